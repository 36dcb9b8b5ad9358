package trace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile/internal/histogram"
)

// VPAConfig is the configuration of the Kubernetes Vertical Pod Autoscaler
// recommender that [VPA] re-implements. Every field is taken as it is: a
// zero margin is no margin. [DefaultVPAConfig] returns the recommender's
// defaults.
type VPAConfig struct {
	// CPUFirstBucket is the width of the CPU histogram's first bucket, in
	// cores (model/aggregations_config.go: 0.01; kubernetes/autoscaler
	// pull request 7554 proposes 0.001).
	CPUFirstBucket float64
	// MemoryFirstBucket is the width of the memory histogram's first
	// bucket, in bytes (1e7).
	MemoryFirstBucket float64
	// BucketGrowth is how much wider each bucket is than the one before
	// (0.05).
	BucketGrowth float64
	// CPUHalfLife and MemoryHalfLife are the histograms' decay half-lives
	// (24 h each).
	CPUHalfLife, MemoryHalfLife time.Duration
	// MemoryInterval is the memory aggregation interval: one peak per
	// interval enters the memory histogram (24 h).
	MemoryInterval time.Duration
	// TargetCPUPercentile and TargetMemoryPercentile pick the target from
	// the histograms (0.9 each).
	TargetCPUPercentile, TargetMemoryPercentile float64
	// SafetyMargin is added to both targets as a share of them (0.15).
	SafetyMargin float64
	// MinCPU (cores) and MinMemory (bytes) are the pod minimums, applied
	// after the margin (25 millicores, 250 MiB).
	MinCPU, MinMemory float64
}

// DefaultVPAConfig returns the recommender's defaults as kubernetes/autoscaler
// sets them (vertical-pod-autoscaler/pkg/recommender: config/config.go and
// model/aggregations_config.go, release 1.7.1 and the main branch of
// August 2026).
func DefaultVPAConfig() VPAConfig {
	return VPAConfig{
		CPUFirstBucket:         0.01,
		MemoryFirstBucket:      1e7,
		BucketGrowth:           0.05,
		CPUHalfLife:            24 * time.Hour,
		MemoryHalfLife:         24 * time.Hour,
		MemoryInterval:         24 * time.Hour,
		TargetCPUPercentile:    0.9,
		TargetMemoryPercentile: 0.9,
		SafetyMargin:           0.15,
		MinCPU:                 0.025,
		MinMemory:              250 * 1024 * 1024,
	}
}

// Histogram ranges and sample weights of the recommender
// (model/aggregations_config.go): CPU up to 1000 cores, memory up to 1 TB,
// every CPU sample weighing minSampleWeight, a bucket with less than
// epsilon counting as empty.
const (
	vpaMaxCPU          = 1000.0
	vpaMaxMemory       = 1e12
	vpaMinSampleWeight = 0.1
	vpaEpsilon         = 0.001 * vpaMinSampleWeight
)

// ErrBadConfig is returned (wrapped, naming the field) by the constructors
// of this package's forecasters for a setting out of range. Check with
// errors.Is.
var ErrBadConfig = errors.New("trace: bad configuration")

// VPA is the recommender of the Kubernetes Vertical Pod Autoscaler,
// re-implemented from kubernetes/autoscaler's
// vertical-pod-autoscaler/pkg/recommender:
//
//   - util/histogram.go, util/decaying_histogram.go,
//     util/histogram_options.go: the decaying histograms with exponential
//     buckets (the shared [histogram.Decaying]);
//   - model/aggregate_container_state.go, model/container.go: every CPU
//     sample enters the CPU histogram with weight 0.1 at its time; memory
//     enters as one peak per MemoryInterval, the interval's running
//     maximum replacing the previous one (subtract the old peak, add the
//     new, both at the interval's end);
//   - logic/recommender.go, logic/estimator.go: target = the percentile
//     of each histogram plus SafetyMargin of it, then at least the pod
//     minimum, in whole millicores and bytes as ResourceAmount truncates.
//
// It reserves its target for every window. Only CPU and memory are
// recommended; other resources are not reserved. A VPA is used by one
// goroutine at a time.
type VPA struct {
	cfg VPAConfig

	cpu        *histogram.Decaying
	lastCPU    time.Time // start of the latest CPU sample aggregated
	memory     *histogram.Decaying
	windowEnd  time.Time // end of the current memory interval (exclusive)
	memoryPeak float64   // the peak of the current interval in the histogram, bytes
	lastMemory time.Time // start of the latest memory sample aggregated
}

var _ Forecaster = (*VPA)(nil)

// NewVPA returns a recommender with cfg, or an error wrapping
// [ErrBadConfig] naming the first field out of range.
func NewVPA(cfg VPAConfig) (*VPA, error) {
	for _, f := range []struct {
		name string
		v    float64
		ok   bool
	}{
		{"CPUFirstBucket", cfg.CPUFirstBucket, cfg.CPUFirstBucket > 0},
		{"MemoryFirstBucket", cfg.MemoryFirstBucket, cfg.MemoryFirstBucket > 0},
		{"BucketGrowth", cfg.BucketGrowth, cfg.BucketGrowth > 0},
		{"TargetCPUPercentile", cfg.TargetCPUPercentile, cfg.TargetCPUPercentile >= 0 && cfg.TargetCPUPercentile <= 1},
		{"TargetMemoryPercentile", cfg.TargetMemoryPercentile, cfg.TargetMemoryPercentile >= 0 && cfg.TargetMemoryPercentile <= 1},
		{"SafetyMargin", cfg.SafetyMargin, cfg.SafetyMargin >= 0},
		{"MinCPU", cfg.MinCPU, cfg.MinCPU >= 0},
		{"MinMemory", cfg.MinMemory, cfg.MinMemory >= 0},
	} {
		if !f.ok || math.IsInf(f.v, 0) {
			return nil, fmt.Errorf("%w: VPAConfig.%s is %v", ErrBadConfig, f.name, f.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"CPUHalfLife", cfg.CPUHalfLife}, {"MemoryHalfLife", cfg.MemoryHalfLife}, {"MemoryInterval", cfg.MemoryInterval}} {
		if d.v <= 0 {
			return nil, fmt.Errorf("%w: VPAConfig.%s is %v, want a positive duration", ErrBadConfig, d.name, d.v)
		}
	}
	cpuBuckets, err := histogram.NewExponential(vpaMaxCPU, cfg.CPUFirstBucket, 1+cfg.BucketGrowth)
	if err != nil {
		return nil, fmt.Errorf("%w: VPAConfig.CPUFirstBucket %v: %v", ErrBadConfig, cfg.CPUFirstBucket, err)
	}
	memoryBuckets, err := histogram.NewExponential(vpaMaxMemory, cfg.MemoryFirstBucket, 1+cfg.BucketGrowth)
	if err != nil {
		return nil, fmt.Errorf("%w: VPAConfig.MemoryFirstBucket %v: %v", ErrBadConfig, cfg.MemoryFirstBucket, err)
	}
	return &VPA{
		cfg:    cfg,
		cpu:    histogram.New(cpuBuckets, cfg.CPUHalfLife, vpaEpsilon),
		memory: histogram.New(memoryBuckets, cfg.MemoryHalfLife, vpaEpsilon),
	}, nil
}

// Observe implements [Forecaster]: p's CPU and memory are one usage sample
// each, measured from p.Time.
func (v *VPA) Observe(p Point) {
	if cores, ok := p.Usage[hal.CPU]; ok {
		v.addCPU(p.Time, cores)
	}
	if bytes, ok := p.Usage[hal.Memory]; ok {
		v.addMemory(p.Time, bytes)
	}
}

// addCPU follows container.go addCPUSample: duplicate or out-of-order
// samples are discarded.
func (v *VPA) addCPU(t time.Time, cores float64) {
	if cores < 0 || !t.After(v.lastCPU) {
		return
	}
	// A usage sample is a ResourceAmount: whole millicores.
	cores = math.Trunc(math.Min(cores*1000, 1e14)) / 1000
	v.cpu.Add(cores, vpaMinSampleWeight, t)
	v.lastCPU = t
}

// addMemory follows container.go addMemorySample: the first sample starts
// the first interval; a sample inside the current interval that beats its
// peak replaces it; a sample past it starts the interval it falls in.
func (v *VPA) addMemory(t time.Time, bytes float64) {
	if bytes < 0 || t.Before(v.lastMemory) {
		return
	}
	v.lastMemory = t
	if v.windowEnd.IsZero() {
		v.windowEnd = t
	}
	bytes = math.Trunc(math.Min(bytes, 1e14)) // a ResourceAmount: whole bytes, at most MaxResourceAmount
	addPeak := false
	if t.Before(v.windowEnd) {
		if v.memoryPeak != 0 && bytes > v.memoryPeak {
			v.memory.Subtract(v.memoryPeak, 1, v.windowEnd)
			addPeak = true
		}
	} else {
		shift := t.Sub(v.windowEnd).Truncate(v.cfg.MemoryInterval) + v.cfg.MemoryInterval
		v.windowEnd = v.windowEnd.Add(shift)
		v.memoryPeak = 0
		addPeak = true
	}
	if addPeak {
		v.memory.Add(bytes, 1, v.windowEnd)
		v.memoryPeak = bytes
	}
}

// Reserve implements [Forecaster]: the recommender's target, whatever the
// window.
func (v *VPA) Reserve(context.Context, time.Time, time.Duration) (hal.Vector, error) {
	// CPU is kept in whole millicores and memory in whole bytes
	// (model/types.go ResourceAmount), each step truncating.
	cpuBase := math.Trunc(v.cpu.Percentile(v.cfg.TargetCPUPercentile) * 1000)
	cpu := cpuBase + math.Trunc(cpuBase*v.cfg.SafetyMargin)
	cpu = math.Max(cpu, math.Trunc(v.cfg.MinCPU*1000))
	memBase := math.Trunc(v.memory.Percentile(v.cfg.TargetMemoryPercentile))
	mem := memBase + math.Trunc(memBase*v.cfg.SafetyMargin)
	mem = math.Max(mem, math.Trunc(v.cfg.MinMemory))
	return hal.Vector{hal.CPU: cpu / 1000, hal.Memory: mem}, nil
}
