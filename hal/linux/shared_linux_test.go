package linux_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/linux"
)

// TestSharedCgroupGetsTheSum: functions bound to one cgroup (functions of
// one process) get it set to the sum of their allocations, exactly as one
// function given that sum gets its own cgroup set; one function without a
// limit leaves the shared cgroup without one; undo restores every value.
func TestSharedCgroupGetsTheSum(t *testing.T) {
	v2 := requireRealCgroups(t)
	ctx := context.Background()
	shared, single := newCgroup(t, v2, "shared"), newCgroup(t, v2, "single")
	dev, err := linux.New(linux.Config{Bindings: []linux.Binding{
		{Function: "route", Cgroup: shared},
		{Function: "conntrack", Cgroup: shared},
		{Function: "accesslog", Cgroup: "/" + shared},
		{Function: "sum", Cgroup: single},
	}})
	if err != nil {
		t.Fatal(err)
	}
	watched := append(hierarchies(v2, shared), hierarchies(v2, single)...)
	original := settingsOf(t, watched...)

	for _, tc := range []struct {
		name  string
		parts []hal.Allocation
		sum   hal.Allocation
	}{
		{"limits add up",
			[]hal.Allocation{
				{Function: "route", Guarantee: hal.Vector{hal.CPU: 0.5, hal.Memory: 64 << 20}, Limit: hal.Vector{hal.CPU: 1, hal.Memory: 256 << 20}},
				{Function: "conntrack", Guarantee: hal.Vector{hal.CPU: 0.25}, Limit: hal.Vector{hal.CPU: 0.5, hal.Memory: 128 << 20}},
				{Function: "accesslog", Limit: hal.Vector{hal.CPU: 0.125}},
			},
			hal.Allocation{Function: "sum", Guarantee: hal.Vector{hal.CPU: 0.75, hal.Memory: 64 << 20}, Limit: hal.Vector{hal.CPU: 1.625, hal.Memory: 384 << 20}}},
		{"one without a cpu limit",
			[]hal.Allocation{
				{Function: "route", Guarantee: hal.Vector{hal.CPU: 0.5}},
				{Function: "conntrack", Guarantee: hal.Vector{hal.CPU: 0.25}, Limit: hal.Vector{hal.CPU: 0.5, hal.Memory: 128 << 20}},
				{Function: "accesslog", Limit: hal.Vector{hal.CPU: 0.125}},
			},
			hal.Allocation{Function: "sum", Guarantee: hal.Vector{hal.CPU: 0.75}, Limit: hal.Vector{hal.Memory: 128 << 20}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Both sides in one Apply, so the weights are of one capacity.
			undo, err := dev.Apply(ctx, append(tc.parts, tc.sum))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = undo(ctx) })
			got, want := valuesIn(t, v2, shared), valuesIn(t, v2, single)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("shared cgroup (+) against one function given the sum (-):\n%s", diff)
			}
			if cmp.Equal(original, settingsOf(t, watched...)) {
				t.Error("Apply changed nothing")
			}
			if err := undo(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(original, settingsOf(t, watched...)); diff != "" {
				t.Errorf("after undo (-original +now):\n%s", diff)
			}
		})
	}
}

// valuesIn reads the CPU and memory values the driver writes in cgroup rel.
func valuesIn(t *testing.T, v2 bool, rel string) map[string]string {
	t.Helper()
	files := []string{"cpu/cpu.shares", "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us", "memory/memory.limit_in_bytes", "memory/memory.soft_limit_in_bytes"}
	if v2 {
		files = []string{"cpu.weight", "cpu.max", "memory.max", "memory.min", "memory.low"}
	}
	out := map[string]string{}
	for _, f := range files {
		dir, name := filepath.Split(f)
		b, err := os.ReadFile(filepath.Join(cgroupRoot, dir, rel, name))
		if err != nil {
			t.Fatal(err)
		}
		out[f] = strings.TrimSpace(string(b))
	}
	return out
}
