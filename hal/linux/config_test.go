package linux_test

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/updraft-dev/updraft/hal/linux"
)

func TestParseConfig(t *testing.T) {
	c, err := linux.ParseConfig(`{"bindings": [{"function": "fwd", "cgroup": "dp/fwd", "cpus": "0-1"}, {"function": "stats", "pids": [10, 11]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	want := linux.Config{
		Root: linux.DefaultRoot, Parent: linux.DefaultParent, Proc: linux.DefaultProc, Sys: linux.DefaultSys,
		Bindings: []linux.Binding{{Function: "fwd", Cgroup: "dp/fwd", CPUs: "0-1"}, {Function: "stats", PIDs: []int{10, 11}}},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("ParseConfig (-want +got):\n%s", diff)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ config, says string }{
		{`{`, "config"},
		{`{"bindings": []}`, `"bindings" is empty`},
		{`{"bindings": [{"function": "f", "cgroup": "a"}], "bogus": 1}`, "bogus"},
		{`{"root": "relative", "bindings": [{"function": "f", "cgroup": "a"}]}`, `"root"`},
		{`{"parent": "../up", "bindings": [{"function": "f", "cgroup": "a"}]}`, `"parent"`},
		{`{"bindings": [{"cgroup": "a"}]}`, `bindings[0]: field "function" is empty`},
		{`{"bindings": [{"function": "a/b", "cgroup": "a"}]}`, `function "a/b"`},
		{`{"bindings": [{"function": "f"}]}`, `function "f": set either "cgroup" or "pids"`},
		{`{"bindings": [{"function": "f", "cgroup": "a", "pids": [1]}]}`, `set only one`},
		{`{"bindings": [{"function": "f", "cgroup": "a/../../etc"}]}`, `field "cgroup"`},
		{`{"bindings": [{"function": "f", "cgroup": "/"}]}`, `hierarchy root`},
		{`{"bindings": [{"function": "f", "pids": [0]}]}`, `0 is not a process ID`},
		{`{"bindings": [{"function": "f", "pids": [5, 5]}]}`, `listed twice`},
		{`{"bindings": [{"function": "f", "cgroup": "a", "cpus": "1-x"}]}`, `field "cpus"`},
		{`{"bindings": [{"function": "f", "cgroup": "a"}, {"function": "f", "cgroup": "b"}]}`, `already bound by bindings[0]`},
		{`{"bindings": [{"function": "f", "cgroup": "a"}]} {}`, "trailing"},
		{`{"bindings": [{"function": "f", "cgroup": "a"}, {"function": "g", "cgroup": "/a", "cpus": "0"}]}`, `cgroup "/a" is shared with bindings[0] (function "f"), whose cpus are "", not "0"`},
		{`{"bindings": [{"function": "f", "pids": [7]}, {"function": "g", "pids": [8, 7]}]}`, `pid 7 is already bound by bindings[0]`},
		{`{"io": {"devices": ["8:0"], "bandwidth": 0}, "bindings": [{"function": "f", "cgroup": "a"}]}`, `"io"`},
	} {
		_, err := linux.ParseConfig(tc.config)
		if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), "linux: ") {
			t.Errorf("ParseConfig(%s) = %v, want an error starting %q and mentioning %q", tc.config, err, "linux: ", tc.says)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{
		"":           nil,
		"\n":         nil,
		"0":          {0},
		"0-3\n":      {0, 1, 2, 3},
		"4,0-1,1":    {0, 1, 4},
		"2-2,7-8,10": {2, 7, 8, 10},
	} {
		got, err := linux.ParseCPUList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "a", "1-", "3-1", "1,,2", "+1", "99999999", "0-65536"} {
		if got, err := linux.ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseCPUMaxAndMemoryValue(t *testing.T) {
	for in, want := range map[string]float64{"max 100000": math.Inf(1), "50000 100000\n": 0.5, "250000 100000": 2.5} {
		if got, err := linux.ParseCPUMax(in); err != nil || got != want {
			t.Errorf("ParseCPUMax(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "max", "1 0", "x 100", "-5 100000", "1 2 3"} {
		if got, err := linux.ParseCPUMax(bad); err == nil {
			t.Errorf("ParseCPUMax(%q) = %v, want an error", bad, got)
		}
	}
	for in, want := range map[string]float64{"max\n": math.Inf(1), "9223372036854771712": math.Inf(1), "1048576": 1 << 20, "-1": math.Inf(1)} {
		if got, err := linux.ParseMemoryValue(in); err != nil || got != want {
			t.Errorf("ParseMemoryValue(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-5", "1.5"} {
		if got, err := linux.ParseMemoryValue(bad); err == nil {
			t.Errorf("ParseMemoryValue(%q) = %v, want an error", bad, got)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(`{"bindings": [{"function": "fwd", "cgroup": "dp/fwd", "cpus": "0-1"}]}`)
	f.Add(`{"root": "/sys/fs/cgroup", "parent": "u", "bindings": [{"function": "s", "pids": [1, 2]}]}`)
	f.Add(`{"bindings": [{"function": "f", "cgroup": "../x"}]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, config string) {
		c, err := linux.ParseConfig(config)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "linux: config") {
				t.Fatalf("error %q lacks the \"linux: config\" prefix", err)
			}
			return
		}
		// An accepted config is complete and consistent.
		if c.Root == "" || c.Parent == "" || len(c.Bindings) == 0 {
			t.Fatalf("accepted config %+v has empty fields", c)
		}
		seen := map[string]bool{}
		for _, b := range c.Bindings {
			if b.Function == "" || seen[b.Function] || (b.Cgroup == "") == (len(b.PIDs) == 0) {
				t.Fatalf("accepted inconsistent binding %+v", b)
			}
			if strings.Contains(b.Cgroup, "..") && !strings.Contains(b.Cgroup, "...") {
				for _, part := range strings.Split(b.Cgroup, "/") {
					if part == ".." {
						t.Fatalf("accepted cgroup %q that leaves the hierarchy", b.Cgroup)
					}
				}
			}
			seen[b.Function] = true
		}
	})
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"", "0", "0-3", "0-1,4,6-7\n", "3-1", "a", "1,,2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := linux.ParseCPUList(s)
		if err != nil {
			return
		}
		if !slices.IsSorted(cpus) || len(slices.Compact(slices.Clone(cpus))) != len(cpus) {
			t.Fatalf("ParseCPUList(%q) = %v, not sorted and distinct", s, cpus)
		}
		// Formatting the result (with ranges, as the kernel does, so it is
		// no longer than a list the parser took) and parsing it again
		// gives the same CPUs.
		var parts []string
		for i := 0; i < len(cpus); {
			j := i
			for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
				j++
			}
			if j == i {
				parts = append(parts, strconv.Itoa(cpus[i]))
			} else {
				parts = append(parts, strconv.Itoa(cpus[i])+"-"+strconv.Itoa(cpus[j]))
			}
			i = j + 1
		}
		again, err := linux.ParseCPUList(strings.Join(parts, ","))
		if err != nil || !slices.Equal(again, cpus) {
			t.Fatalf("round trip of %v: %v, %v", cpus, again, err)
		}
	})
}

func FuzzParseCPUMax(f *testing.F) {
	for _, s := range []string{"max 100000", "50000 100000", "1 0", "x y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cores, err := linux.ParseCPUMax(s)
		if err == nil && (math.IsNaN(cores) || cores < 0) {
			t.Fatalf("ParseCPUMax(%q) = %v, want a non-negative number", s, cores)
		}
	})
}

func FuzzParseMemoryValue(f *testing.F) {
	for _, s := range []string{"max", "9223372036854771712", "4096\n", "-1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := linux.ParseMemoryValue(s)
		if err == nil && (math.IsNaN(v) || v < 0) {
			t.Fatalf("ParseMemoryValue(%q) = %v, want a non-negative number", s, v)
		}
	})
}

func TestParseIOFiles(t *testing.T) {
	got, err := linux.ParseThrottle("8:0 1048576\n254:0 0\n")
	if err != nil || !cmp.Equal(got, map[string]uint64{"8:0": 1 << 20, "254:0": 0}) {
		t.Errorf("ParseThrottle = %v, %v", got, err)
	}
	max, err := linux.ParseIOMax("254:0 rbps=2097152 wbps=max riops=max wiops=max\n")
	if err != nil || !cmp.Equal(max, map[string]map[string]string{"254:0": {"rbps": "2097152", "wbps": "max", "riops": "max", "wiops": "max"}}) {
		t.Errorf("ParseIOMax = %v, %v", max, err)
	}
	for _, bad := range []string{"8:0", "8 0", "x:0 5", "8:0 -1", "8:0 1 2"} {
		if _, err := linux.ParseThrottle(bad); err == nil {
			t.Errorf("ParseThrottle(%q) succeeded, want an error", bad)
		}
	}
	for _, bad := range []string{"8:0 rbps", "8:0 rbps=lots", "sda rbps=1", "8:0 =1"} {
		if _, err := linux.ParseIOMax(bad); err == nil {
			t.Errorf("ParseIOMax(%q) succeeded, want an error", bad)
		}
	}
}

func FuzzParseThrottle(f *testing.F) {
	for _, s := range []string{"", "8:0 1048576\n", "8:0 1\n254:0 0\n", "x 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := linux.ParseThrottle(s)
		if err != nil {
			return
		}
		// Writing the parsed lines back out and parsing them again
		// gives the same values.
		var b strings.Builder
		for dev, v := range got {
			b.WriteString(dev + " " + strconv.FormatUint(v, 10) + "\n")
		}
		again, err := linux.ParseThrottle(b.String())
		if err != nil || len(again) != len(got) {
			t.Fatalf("round trip of %v: %v, %v", got, again, err)
		}
		for dev, v := range got {
			if again[dev] != v {
				t.Fatalf("round trip of %v: %v", got, again)
			}
		}
	})
}

func FuzzParseIOMax(f *testing.F) {
	for _, s := range []string{"", "254:0 rbps=2097152 wbps=max riops=max wiops=max\n", "8:0 rbps=1\n8:16 wbps=2", "8:0 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := linux.ParseIOMax(s)
		if err != nil {
			return
		}
		for dev, kv := range got {
			if _, _, err := linux.ParseDevice(dev); err != nil {
				t.Fatalf("accepted device %q: %v", dev, err)
			}
			for k, v := range kv {
				if k == "" || v == "" {
					t.Fatalf("accepted empty key or value in %v", kv)
				}
			}
		}
	})
}
