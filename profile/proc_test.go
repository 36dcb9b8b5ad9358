//go:build linux

package profile_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/internal/testchild"
	"github.com/updraft-dev/updraft/profile"
)

// measureWindow is how long the real-process tests profile for.
const measureWindow = 2 * time.Second

// profileFor calls Collect, waits d (the measurement interval, not a
// synchronisation), and returns what a second Collect reports.
func profileFor(t *testing.T, c profile.Collector, d time.Duration) []profile.Sample {
	t.Helper()
	ctx := context.Background()
	_, err := c.Collect(ctx)
	require.NoError(t, err)
	<-time.After(d)
	last, err := c.Collect(ctx)
	require.NoError(t, err)
	return last
}

func TestProcCollectorMeasuresRealProcesses(t *testing.T) {
	burner := testchild.Start(t, testchild.Burn(1))
	const held = 128 << 20
	holder := testchild.Start(t, testchild.Hold(held))
	idle := testchild.Start(t, testchild.Hold(0)) // the same binary holding nothing: the baseline RSS

	c, err := profile.NewProcCollector(profile.ProcOptions{Targets: []profile.ProcTarget{
		{Function: "burner", PID: burner.PID()},
		{Function: "holder", PID: holder.PID()},
		{Function: "idle", PID: idle.PID()},
	}})
	require.NoError(t, err)

	ctx := context.Background()
	_, err = c.Collect(ctx)
	require.NoError(t, err)
	cpu0, t0 := burner.CPUTime(t), time.Now()
	<-time.After(measureWindow)
	cpu1, t1 := burner.CPUTime(t), time.Now()
	samples, err := c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, samples, 3)

	truth := (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds()
	require.Greater(t, truth, 0.05, "the burner got almost no CPU; the machine is too loaded to measure")
	byName := map[string]profile.Sample{}
	for _, s := range samples {
		byName[s.Function] = s
	}
	got := byName["burner"].Usage[hal.CPU]
	t.Logf("burner: procfs %.3f cores, child's own account %.3f cores", got, truth)
	require.InEpsilon(t, truth, got, 0.20, "CPU measured through procfs vs the child's own CPU clock")

	rss := byName["holder"].Usage[hal.Memory] - byName["idle"].Usage[hal.Memory]
	t.Logf("holder: procfs RSS %.1f MiB above the idle child's %.1f MiB, held %d MiB",
		rss/(1<<20), byName["idle"].Usage[hal.Memory]/(1<<20), held>>20)
	require.InEpsilon(t, float64(held), rss, 0.20, "resident memory vs the bytes the child touched")
	require.Zero(t, c.Gone())
}

func TestProcCollectorThread(t *testing.T) {
	tidc := make(chan int)
	stop := make(chan struct{})
	cpu := make(chan time.Duration, 2)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tidc <- syscall.Gettid()
		cpu <- threadCPU()
		for x := 0; ; x++ {
			if x%(1<<16) == 0 {
				select {
				case <-stop:
					cpu <- threadCPU()
					return
				default:
				}
			}
		}
	}()
	tid := <-tidc
	c0 := <-cpu
	c, err := profile.NewProcCollector(profile.ProcOptions{Targets: []profile.ProcTarget{{Function: "spinner", PID: os.Getpid(), TID: tid}}})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.Collect(ctx)
	require.NoError(t, err)
	t0 := time.Now()
	<-time.After(time.Second)
	samples, err := c.Collect(ctx)
	require.NoError(t, err)
	t1 := time.Now()
	close(stop)
	c1 := <-cpu
	require.Len(t, samples, 1)
	truth := (c1 - c0).Seconds() / t1.Sub(t0).Seconds()
	got := samples[0].Usage[hal.CPU]
	t.Logf("thread %d: procfs %.3f cores, thread clock %.3f cores", tid, got, truth)
	require.Greater(t, got, 0.0)
	// The thread clock also covers the moments between the last Collect
	// and stop; allow for that as well as procfs's 10ms ticks.
	require.InEpsilon(t, truth, got, 0.35)
	_, hasMem := samples[0].Usage[hal.Memory]
	require.False(t, hasMem, "a thread target reports CPU only")
}

func threadCPU() time.Duration {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return -1
	}
	return time.Duration(ts.Nano())
}

func TestProcCollectorProcessExits(t *testing.T) {
	ch := testchild.Start(t, testchild.Hold(4096))
	c, err := profile.NewProcCollector(profile.ProcOptions{Targets: []profile.ProcTarget{
		{Function: "short", PID: ch.PID()},
		{Function: "self", PID: os.Getpid()},
	}})
	require.NoError(t, err)
	ctx := context.Background()
	s, err := c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, s, 2)
	require.NoError(t, ch.CloseStdin())
	require.NoError(t, ch.Wait())
	s, err = c.Collect(ctx)
	require.NoError(t, err, "a process that exited is skipped, not an error")
	require.Len(t, s, 1)
	require.Equal(t, "self", s[0].Function)
	require.EqualValues(t, 1, c.Gone())
}

func TestProcCollectorFixture(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	root := copyFixture(t, "testdata/proc")
	c, err := profile.NewProcCollector(profile.ProcOptions{Root: root, Clock: clock, Targets: []profile.ProcTarget{
		{Function: "app", PID: 100},
		{Function: "app", PID: 200},
		{Function: "worker", PID: 100, TID: 101},
	}})
	require.NoError(t, err)
	ctx := context.Background()
	s, err := c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, s, 2)
	page := float64(os.Getpagesize())
	require.Equal(t, "app", s[0].Function)
	require.Equal(t, (1000+500)*page, s[0].Usage[hal.Memory])
	_, hasCPU := s[0].Usage[hal.CPU]
	require.False(t, hasCPU, "the first reading has no rate yet")

	// Ten seconds later pid 100 used 5s of CPU (500 ticks) and 1 MB of I/O.
	now = now.Add(10 * time.Second)
	writeFile(t, filepath.Join(root, "100/stat"), procStat(100, "app", 300+400, 100+100, 1000))
	writeFile(t, filepath.Join(root, "100/io"), procIO(1<<20+4096, 4096))
	writeFile(t, filepath.Join(root, "100/task/101/stat"), procStat(101, "worker", 250+200, 50, 1000))
	s, err = c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, s, 2)
	require.InDelta(t, 0.5, s[0].Usage[hal.CPU], 1e-9)
	require.InDelta(t, float64(1<<20)/10, s[0].Usage[hal.IO], 1e-9)
	require.Equal(t, 10*time.Second, s[0].Interval)
	require.Equal(t, "worker", s[1].Function)
	require.InDelta(t, 0.2, s[1].Usage[hal.CPU], 1e-9)

	// A malformed stat file is an error naming it; the other targets
	// are still measured.
	writeFile(t, filepath.Join(root, "200/stat"), "200 (app) R garbage")
	s, err = c.Collect(ctx)
	require.ErrorContains(t, err, filepath.Join(root, "200/stat"))
	require.ErrorContains(t, err, `function "app"`)
	require.Len(t, s, 2)
}

func TestProcCollectorSetTargetsKeepsReadings(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := copyFixture(t, "testdata/proc")
	c, err := profile.NewProcCollector(profile.ProcOptions{Root: root, Clock: func() time.Time { return now },
		Targets: []profile.ProcTarget{{Function: "app", PID: 100}}})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.Collect(ctx)
	require.NoError(t, err)
	// pid 200 joins; pid 100 keeps its previous reading, so its rate
	// continues while 200 reports memory only.
	require.NoError(t, c.SetTargets([]profile.ProcTarget{{Function: "app", PID: 100}, {Function: "batch", PID: 200}}))
	now = now.Add(10 * time.Second)
	writeFile(t, filepath.Join(root, "100/stat"), procStat(100, "app", 300+100, 100, 1000))
	s, err := c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, s, 2)
	require.InDelta(t, 0.1, s[0].Usage[hal.CPU], 1e-9)
	_, hasCPU := s[1].Usage[hal.CPU]
	require.False(t, hasCPU)
	require.ErrorContains(t, c.SetTargets([]profile.ProcTarget{{Function: "x", PID: -4}}), "pid -4")
}

func TestNewProcCollectorRejectsBadTargets(t *testing.T) {
	for _, tc := range []struct {
		target profile.ProcTarget
		want   string
	}{
		{profile.ProcTarget{PID: 1}, "no function name"},
		{profile.ProcTarget{Function: "f", PID: 0}, `function "f": pid 0`},
		{profile.ProcTarget{Function: "f", PID: 1, TID: -1}, "tid -1"},
	} {
		_, err := profile.NewProcCollector(profile.ProcOptions{Targets: []profile.ProcTarget{tc.target}})
		require.ErrorContains(t, err, tc.want)
	}
	_, err := profile.NewProcCollector(profile.ProcOptions{Root: "testdata/no-such-dir"})
	require.ErrorContains(t, err, "testdata/no-such-dir")
}

func TestSystemCollectorReal(t *testing.T) {
	// A child burning one CPU makes the machine's CPU use known to be at
	// least about one core, however idle the rest of the machine is.
	testchild.Start(t, testchild.Burn(1))
	c, err := profile.NewSystemCollector(profile.SystemOptions{})
	require.NoError(t, err)
	s := profileFor(t, c, 500*time.Millisecond)
	require.Len(t, s, 1)
	u := s[0].Usage
	require.Equal(t, profile.DefaultSystemFunction, s[0].Function)
	require.Greater(t, u[hal.Memory], 0.0)
	require.Greater(t, u[hal.CPU], 0.5, "a child keeps one CPU busy")
	require.LessOrEqual(t, u[hal.CPU], float64(runtime.NumCPU())*1.05)
	if _, err := os.Stat("/proc/pressure/cpu"); err == nil {
		require.Contains(t, u, profile.PressureCPU)
		require.GreaterOrEqual(t, u[profile.PressureCPU], 0.0)
		require.LessOrEqual(t, u[profile.PressureCPU], 1.0)
	}
	require.NoError(t, u.Validate())
}

func TestSystemCollectorFixture(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := copyFixture(t, "testdata/proc")
	c, err := profile.NewSystemCollector(profile.SystemOptions{Root: root, Function: "host", Clock: func() time.Time { return now }})
	require.NoError(t, err)
	ctx := context.Background()
	s, err := c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, s, 1)
	require.Equal(t, "host", s[0].Function)
	require.Equal(t, float64(8000000-6000000)*1024, s[0].Usage[hal.Memory])

	// Two seconds later: 300 more busy ticks (1.5 cores) and 0.5s of cpu stall.
	now = now.Add(2 * time.Second)
	writeFile(t, filepath.Join(root, "stat"), systemStat(1000+200, 0, 500+100, 90000))
	writeFile(t, filepath.Join(root, "pressure/cpu"), "some avg10=1.00 avg60=1.00 avg300=1.00 total=1500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
	s, err = c.Collect(ctx)
	require.NoError(t, err)
	require.InDelta(t, 1.5, s[0].Usage[hal.CPU], 1e-9)
	require.InDelta(t, 0.25, s[0].Usage[profile.PressureCPU], 1e-9)
	require.InDelta(t, 0, s[0].Usage[profile.PressureMemory], 1e-9)

	writeFile(t, filepath.Join(root, "pressure/io"), "some avg10=x total=3\n")
	_, err = c.Collect(ctx)
	require.ErrorContains(t, err, filepath.Join(root, "pressure/io"))
}

// TestProcCollectorGarbageNeverPanics feeds malformed procfs files.
func TestProcCollectorGarbageNeverPanics(t *testing.T) {
	for _, stat := range []string{"", "100", "100 (x", "100 (x) R 1 2 3", "100 (x) R " + repeat("-1 ", 60)} {
		root := copyFixture(t, "testdata/proc")
		writeFile(t, filepath.Join(root, "100/stat"), stat)
		c, err := profile.NewProcCollector(profile.ProcOptions{Root: root, Targets: []profile.ProcTarget{{Function: "app", PID: 100}}})
		require.NoError(t, err)
		_, err = c.Collect(context.Background())
		require.Error(t, err, "stat %q", stat)
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

// FuzzProcCollectorStat feeds arbitrary /proc/<pid>/stat and io files to
// the collector: it must return samples or an error, never panic.
func FuzzProcCollectorStat(f *testing.F) {
	f.Add(procStat(100, "app", 300, 100, 1000), procIO(4096, 4096))
	f.Add(procStat(100, "a) (b", 1, 1, 1), "read_bytes: x\n")
	f.Add("100 (app", "")
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, stat, io string) {
		writeFile(t, filepath.Join(root, "100/stat"), stat)
		writeFile(t, filepath.Join(root, "100/io"), io)
		c, err := profile.NewProcCollector(profile.ProcOptions{Root: root, Targets: []profile.ProcTarget{{Function: "app", PID: 100}}})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			s, err := c.Collect(context.Background())
			if err == nil && len(s) == 1 {
				if verr := s[0].Usage.Validate(); verr != nil {
					t.Fatalf("collector produced an invalid vector from stat %q io %q: %v", stat, io, verr)
				}
			}
		}
	})
}
