package linux_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/linux"
	"github.com/updraft-dev/updraft/internal/testchild"
)

var _ hal.Journaled = (*linux.Device)(nil)

// journaledApply applies allocs and returns the last record journaled.
func journaledApply(t *testing.T, dev *linux.Device, allocs ...hal.Allocation) (hal.Undo, []byte) {
	t.Helper()
	var record []byte
	undo, err := dev.ApplyJournaled(context.Background(), allocs, func(r []byte) error {
		record = append([]byte(nil), r...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(record) == 0 {
		t.Fatal("nothing was journaled")
	}
	return undo, record
}

// TestUndoRecordInANewDevice (fixture tree, any user): a device opened
// anew undoes from the record alone, exactly; twice is harmless, and so is
// the first device's Undo afterwards.
func TestUndoRecordInANewDevice(t *testing.T) {
	ctx := context.Background()
	root := fixture(t, "v1")
	cfg := fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "svc", CPUs: "3"})
	dev, err := linux.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := readTree(t, filepath.Join(root, "cgroup"))
	undo, record := journaledApply(t, dev, hal.Allocation{Function: "svc",
		Guarantee: hal.Vector{hal.CPU: 1.25, hal.Memory: 64 << 20}, Limit: hal.Vector{hal.CPU: 2, hal.Memory: 128 << 20}})
	if cmp.Equal(before, readTree(t, filepath.Join(root, "cgroup"))) {
		t.Fatal("Apply changed nothing")
	}
	again, err := linux.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := again.UndoRecord(ctx, record); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, readTree(t, filepath.Join(root, "cgroup"))); diff != "" {
			t.Fatalf("after UndoRecord (-before +after):\n%s", diff)
		}
	}
	if err := undo(ctx); err != nil {
		t.Fatalf("Undo after UndoRecord: %v", err)
	}
}

// TestJournalFailureLeavesNothing: when the caller's journal fails, what
// was changed before is undone and the error says so.
func TestJournalFailureLeavesNothing(t *testing.T) {
	root := fixture(t, "v1")
	dev, err := linux.New(fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "svc", CPUs: "3"}))
	if err != nil {
		t.Fatal(err)
	}
	before := readTree(t, filepath.Join(root, "cgroup"))
	calls := 0
	_, err = dev.ApplyJournaled(context.Background(), []hal.Allocation{{Function: "svc", Guarantee: hal.Vector{hal.CPU: 1}}},
		func([]byte) error {
			if calls++; calls == 3 {
				return errors.New("journal store unreachable")
			}
			return nil
		})
	if err == nil || !strings.Contains(err.Error(), "journal store unreachable") {
		t.Fatalf("err = %v, want the journal's error", err)
	}
	if diff := cmp.Diff(before, readTree(t, filepath.Join(root, "cgroup"))); diff != "" {
		t.Fatalf("a failed journal left changes (-before +after):\n%s", diff)
	}
}

func TestUndoRecordRefusesBadRecords(t *testing.T) {
	root := fixture(t, "v1")
	dev, err := linux.New(fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "svc", CPUs: "3"}))
	if err != nil {
		t.Fatal(err)
	}
	cg := filepath.Join(root, "cgroup")
	for name, rec := range map[string]string{
		"garbage":       "{",
		"other driver":  `{"v":1,"driver":"sim","steps":[]}`,
		"newer version": `{"v":2,"driver":"linux","steps":[]}`,
		"unknown kind":  `{"v":1,"driver":"linux","steps":[{"k":"reboot"}]}`,
		"outside root":  `{"v":1,"driver":"linux","steps":[{"k":"file","dir":"/etc","file":"passwd","content":"x"}]}`,
		"dot-dot":       `{"v":1,"driver":"linux","steps":[{"k":"dir","path":"` + cg + `/../../x"}]}`,
		"file with /":   `{"v":1,"driver":"linux","steps":[{"k":"file","dir":"` + cg + `/cpu","file":"a/b","content":"x"}]}`,
	} {
		err := dev.UndoRecord(context.Background(), []byte(rec))
		if err == nil || !strings.Contains(err.Error(), "linux: undo record") {
			t.Errorf("%s: err = %v, want a refusal of the record", name, err)
		}
	}
}

// TestJournaledUndoOnRealCgroups (root): a bound process is moved into a
// created cgroup under a Parent; a new device undoes from the record: the
// process is home, the cgroups are gone, the values as before.
func TestJournaledUndoOnRealCgroups(t *testing.T) {
	v2 := requireRealCgroups(t)
	ctx := context.Background()
	existing := newCgroup(t, v2, "journaled")
	parent := newParent(t, v2)
	child := testchild.Start(t, testchild.Burn(1))
	cfg := linux.Config{Parent: parent, Bindings: []linux.Binding{
		{Function: "bound", PIDs: []int{child.PID()}},
		{Function: "existing", Cgroup: existing},
	}}
	dev, err := linux.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	watched := append(hierarchies(v2, existing), hierarchies(v2, parent)...)
	before := settingsOf(t, watched...)
	home := cgroupOf(t, child.PID())
	_, record := journaledApply(t, dev,
		hal.Allocation{Function: "bound", Guarantee: hal.Vector{hal.CPU: 0.5}, Limit: hal.Vector{hal.CPU: 1}},
		hal.Allocation{Function: "existing", Guarantee: hal.Vector{hal.CPU: 0.25, hal.Memory: 64 << 20}, Limit: hal.Vector{hal.CPU: 0.5, hal.Memory: 128 << 20}})
	if cgroupOf(t, child.PID()) == home {
		t.Fatal("the bound process was not moved")
	}
	fresh, err := linux.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.UndoRecord(ctx, record); err != nil {
		t.Fatal(err)
	}
	if got := cgroupOf(t, child.PID()); got != home {
		t.Errorf("the bound process is not home: before\n%s\nafter\n%s", home, got)
	}
	requireGone(t, hierarchies(v2, parent)...)
	if diff := cmp.Diff(before, settingsOf(t, watched...)); diff != "" {
		t.Errorf("cgroup values after UndoRecord (-before +after):\n%s", diff)
	}
	if err := fresh.UndoRecord(ctx, record); err != nil {
		t.Errorf("second UndoRecord: %v, want nil (idempotent)", err)
	}
}
