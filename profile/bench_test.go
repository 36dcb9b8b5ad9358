//go:build linux

package profile_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/internal/testchild"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/profile/trace"
)

// processCPU returns the CPU time (user + system) this process has used.
// Benchmarks report it per operation beside wall time, because on a shared
// machine wall time mostly measures waiting for a core.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports CPU per operation and per unit (process, function)
// since start.
func reportCPU(b *testing.B, start time.Duration, units int, unit string) {
	cpu := float64((processCPU() - start).Nanoseconds()) / float64(b.N)
	b.ReportMetric(cpu, "cpu-ns/op")
	if units > 1 {
		b.ReportMetric(cpu/float64(units), "cpu-ns/"+unit)
	}
}

// startIdleChildren starts n copies of the test binary that wait for their
// shared stdin to close, and stops them when the benchmark ends.
func startIdleChildren(b *testing.B, n int) []int {
	b.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	var cmds []*exec.Cmd
	b.Cleanup(func() {
		w.Close()
		for _, c := range cmds {
			_ = c.Wait()
		}
		r.Close()
	})
	pids := make([]int, 0, n)
	for range n {
		c := testchild.Command(b, testchild.Hold(0))
		c.Stdin = r
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, c)
		pids = append(pids, c.Process.Pid)
	}
	return pids
}

// BenchmarkCollect measures the procfs collector per process per sample,
// beside the baseline of reading each process's stat and io files with
// os.ReadFile and nothing else.
func BenchmarkCollect(b *testing.B) {
	for _, n := range []int{10, 500} {
		pids := startIdleChildren(b, n)
		targets := make([]profile.ProcTarget, n)
		for i, pid := range pids {
			targets[i] = profile.ProcTarget{Function: fmt.Sprintf("f%03d", i), PID: pid}
		}
		b.Run(fmt.Sprintf("procs=%d/collector", n), func(b *testing.B) {
			c, err := profile.NewProcCollector(profile.ProcOptions{Targets: targets})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			cpu := processCPU()
			for b.Loop() {
				s, err := c.Collect(ctx)
				if err != nil || len(s) != n {
					b.Fatalf("collected %d of %d: %v", len(s), n, err)
				}
			}
			reportCPU(b, cpu, n, "process")
		})
		b.Run(fmt.Sprintf("procs=%d/baseline-readfile", n), func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				for _, pid := range pids {
					if _, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil {
						b.Fatal(err)
					}
					if _, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportCPU(b, cpu, n, "process")
		})
	}
}

const benchFunctions = 10_000

func benchSample(i, k int) profile.Sample {
	return profile.Sample{
		Function: fmt.Sprintf("fn%05d", i%benchFunctions),
		Time:     epoch.Add(time.Duration(k) * time.Minute),
		Usage:    hal.Vector{hal.CPU: 0.5 + float64(k%7)/10, hal.Memory: float64(1<<20 + k%13<<16), hal.IO: float64(k % 5 << 10)},
		Calls:    int64(k % 11),
	}
}

// BenchmarkObserve measures one sample of three resources into a model of
// 10 000 functions, beside the baseline VPA-style recommender's histogram
// update for the same sample.
func BenchmarkObserve(b *testing.B) {
	samples := make([]profile.Sample, benchFunctions*4)
	for j := range samples {
		samples[j] = benchSample(j, j/benchFunctions)
	}
	b.Run("analyzer", func(b *testing.B) {
		an := mustNew(b, profile.Options{})
		an.Observe(samples[:benchFunctions]...) // every function exists
		i := 0
		cpu := processCPU()
		for b.Loop() {
			s := samples[i%len(samples)]
			s.Time = s.Time.Add(time.Duration(i/len(samples)) * time.Hour)
			an.Observe(s)
			i++
		}
		reportCPU(b, cpu, 1, "")
	})
	b.Run("baseline-vpa", func(b *testing.B) {
		vpas := make([]trace.VPA, benchFunctions)
		i := 0
		cpu := processCPU()
		for b.Loop() {
			s := samples[i%len(samples)]
			vpas[i%benchFunctions].Observe(trace.Point{Time: s.Time.Add(time.Duration(i/len(samples)) * time.Hour), Usage: s.Usage})
			i++
		}
		reportCPU(b, cpu, 1, "")
	})
}

// BenchmarkForecast measures one Forecast over 10 000 functions with an hour
// of one-minute history each, beside the baseline of asking 10 000 VPA
// histograms for their reservation.
func BenchmarkForecast(b *testing.B) {
	const history = 60 // an hour of minutes: the model's size per function is fixed, so longer history costs setup time only
	clock := &fakeClock{epoch}
	an := mustNew(b, profile.Options{Clock: clock.Now})
	vpas := make([]trace.VPA, benchFunctions)
	for k := range history {
		for i := range benchFunctions {
			s := benchSample(i, k)
			an.Observe(s)
			vpas[i].Observe(trace.Point{Time: s.Time, Usage: s.Usage})
		}
	}
	clock.now = epoch.Add(history * time.Minute)
	functions := make([]profile.Function, benchFunctions)
	for i := range functions {
		functions[i] = profile.Function{Name: fmt.Sprintf("fn%05d", i)}
	}
	functions[0].EntryPoint, functions[0].Criticality = true, profile.Critical
	ctx := context.Background()
	b.Run("analyzer", func(b *testing.B) {
		cpu := processCPU()
		for b.Loop() {
			fc, err := an.Forecast(ctx, time.Hour, functions)
			if err != nil || len(fc.Functions) != benchFunctions {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu, benchFunctions, "function")
	})
	b.Run("baseline-vpa", func(b *testing.B) {
		cpu := processCPU()
		for b.Loop() {
			for i := range vpas {
				if _, err := vpas[i].Reserve(ctx, clock.now, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportCPU(b, cpu, benchFunctions, "function")
	})
}
