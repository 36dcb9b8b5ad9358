package profile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/updraft-dev/updraft/hal"
)

// Defaults used for zero fields of [Options].
const (
	DefaultLevelTau        = 30 * time.Minute
	DefaultTrendTau        = 6 * time.Hour
	DefaultHorizon         = time.Hour
	DefaultHalfLife        = 24 * time.Hour
	DefaultMinSamples      = 30
	DefaultEvidenceBucket  = time.Minute
	DefaultEvidenceBuckets = 120
	DefaultMaxFunctions    = 100_000
)

// Default prices of one overrun, per resource, in units of the function's
// mean usage over-reserved for one observation (see
// [Options.OverrunCost]). A memory overrun is an OOM kill under a hard
// limit, a CPU overrun a delay, so memory's price is far higher.
const (
	DefaultCPUOverrunCost    = 30.0
	DefaultMemoryOverrunCost = 10000.0
	DefaultOtherOverrunCost  = 9.0 // every other resource
)

// DefaultMemoryHeadroom is the default [Options.Headroom] of memory;
// other resources have none by default.
const DefaultMemoryHeadroom = 0.05

// DefaultMemoryPeakSpan is the default [Options.PeakSpan] of memory;
// other resources have none by default.
const DefaultMemoryPeakSpan = 24 * time.Hour

// MaxPeakSpan is the longest [Options.PeakSpan]: the model keeps the peak
// of each horizon for this long.
const MaxPeakSpan = seasonDays * 24 * time.Hour

// DefaultPeakSpan returns the default peak span of r (0: none).
func DefaultPeakSpan(r hal.Resource) time.Duration {
	if r == hal.Memory {
		return DefaultMemoryPeakSpan
	}
	return 0
}

// DefaultHeadroom returns the default least headroom of r.
func DefaultHeadroom(r hal.Resource) float64 {
	if r == hal.Memory {
		return DefaultMemoryHeadroom
	}
	return 0
}

// DefaultOverrunCost returns the default price of an overrun of r.
func DefaultOverrunCost(r hal.Resource) float64 {
	switch r {
	case hal.CPU:
		return DefaultCPUOverrunCost
	case hal.Memory:
		return DefaultMemoryOverrunCost
	}
	return DefaultOtherOverrunCost
}

// maxEvidenceBuckets bounds Options.EvidenceBuckets (a week of minutes),
// which sets the memory kept per function.
const maxEvidenceBuckets = 7 * 24 * 60

// Options configure an [Analyzer]. Every zero field means the documented
// default.
type Options struct {
	// Collectors are read, in order, by [Analyzer.Sample].
	Collectors []Collector
	// Clock returns the current time; nil means time.Now. Forecasts are
	// made as of Clock().
	Clock func() time.Time
	// Logger receives debug and warning records; nil discards them.
	Logger *slog.Logger

	// LevelTau is the time constant over which the level follows new
	// observations (default [DefaultLevelTau]); TrendTau the same for the
	// trend ([DefaultTrendTau]).
	LevelTau, TrendTau time.Duration
	// Horizon is the window length the residual statistics are measured
	// for ([DefaultHorizon]); forecasts for other windows reuse them.
	Horizon time.Duration
	// HalfLife is how fast old observations lose weight: in the value
	// distribution, in the distributions of forecast errors (which also
	// choose between forecasters) and in the long-run mean that is the
	// unit of errors ([DefaultHalfLife]). An
	// observation one half-life old counts half as much as a new one.
	HalfLife time.Duration
	// OverrunCost is, per resource, what one observation above the
	// reservation costs, in units of the function's mean usage
	// over-reserved for one observation: P95 is the reservation that would
	// have minimised over-reservation plus this cost per overrun over the
	// recent history, and the same cost picks between forecasters. Higher
	// values favour fewer violations over less slack. A resource absent
	// (or zero) here costs [DefaultOverrunCost] of it.
	OverrunCost map[hal.Resource]float64
	// Headroom is, per resource, the least share P95 keeps above the point
	// prediction it rests on, once the forecast rests on its error
	// history: a safety margin against rises larger than any in the
	// recent errors, the kind that would be an OOM kill for memory. A
	// resource absent (or zero) here gets [DefaultHeadroom] of it; a
	// negative value means none.
	Headroom map[hal.Resource]float64
	// PeakSpan is, per resource, a span of history whose highest
	// observation P95 never goes below (times 1+Headroom), once the
	// forecast rests on its error history: the windowed peak that
	// Autopilot's and the VPA's memory recommenders rest on. A resource
	// absent (or zero) here gets [DefaultPeakSpan] of it; a negative
	// value means none. At most [MaxPeakSpan].
	PeakSpan map[hal.Resource]time.Duration
	// MinSamples is the number of observations under which a forecast
	// uses the wide small-sample interval ([DefaultMinSamples]).
	MinSamples int
	// EvidenceBucket and EvidenceBuckets size the per-function activity
	// history used to judge criticality: that many buckets of that width
	// ([DefaultEvidenceBucket] × [DefaultEvidenceBuckets] = two hours).
	EvidenceBucket  time.Duration
	EvidenceBuckets int
	// MaxFunctions bounds the number of functions remembered; samples of
	// further functions are dropped and counted ([DefaultMaxFunctions]).
	MaxFunctions int
}

// Analyzer is the Resource Profile Analyzer, the [Profiler] most callers
// want. It keeps a bounded model per function and resource, fed by
// [Analyzer.Observe] and [Analyzer.Sample]. All methods are safe for
// concurrent use.
type Analyzer struct {
	collectors  []Collector
	clock       func() time.Time
	log         *slog.Logger
	params      modelParams
	overrunCost map[hal.Resource]float64       // as given; see price
	headrooms   map[hal.Resource]float64       // as given; see headroom
	peakSpans   map[hal.Resource]time.Duration // as given; see peakSpan
	evBucket    time.Duration
	evBuckets   int
	maxFuncs    int

	collectMu sync.Mutex // serialises Sample, so each Collector sees one caller

	mu       sync.Mutex // guards everything below
	funcs    map[string]*functionModel
	observed int64 // samples recorded
	dropped  int64 // samples refused: invalid, or over MaxFunctions
}

var _ Profiler = (*Analyzer)(nil)

// functionModel is everything the Analyzer remembers about one function.
type functionModel struct {
	series   map[hal.Resource]*series
	evidence evidence
	samples  int
	last     time.Time
}

// New returns an Analyzer configured by opts, or an error naming the first
// option out of range.
func New(opts Options) (*Analyzer, error) {
	a := &Analyzer{
		collectors: slices.Clone(opts.Collectors),
		clock:      opts.Clock,
		log:        opts.Logger,
		params: modelParams{
			levelTau:   orDefault(opts.LevelTau, DefaultLevelTau),
			trendTau:   orDefault(opts.TrendTau, DefaultTrendTau),
			horizon:    orDefault(opts.Horizon, DefaultHorizon),
			halfLife:   orDefault(opts.HalfLife, DefaultHalfLife),
			minSamples: orDefault(opts.MinSamples, DefaultMinSamples),
		},
		overrunCost: maps.Clone(opts.OverrunCost),
		headrooms:   maps.Clone(opts.Headroom),
		peakSpans:   maps.Clone(opts.PeakSpan),
		evBucket:    orDefault(opts.EvidenceBucket, DefaultEvidenceBucket),
		evBuckets:   orDefault(opts.EvidenceBuckets, DefaultEvidenceBuckets),
		maxFuncs:    orDefault(opts.MaxFunctions, DefaultMaxFunctions),
		funcs:       make(map[string]*functionModel),
	}
	for i, c := range a.collectors {
		if c == nil {
			return nil, fmt.Errorf("profile: Options.Collectors[%d] is nil", i)
		}
	}
	for _, o := range []struct {
		name string
		d    time.Duration
	}{
		{"LevelTau", opts.LevelTau}, {"TrendTau", opts.TrendTau}, {"Horizon", opts.Horizon},
		{"HalfLife", opts.HalfLife}, {"EvidenceBucket", opts.EvidenceBucket},
	} {
		if o.d < 0 {
			return nil, fmt.Errorf("profile: Options.%s is negative (%v)", o.name, o.d)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(opts.Headroom)) {
		if h := opts.Headroom[r]; math.IsNaN(h) || math.IsInf(h, 0) {
			return nil, fmt.Errorf("profile: Options.Headroom[%q] %v is not a finite number", r, h)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(opts.PeakSpan)) {
		if d := opts.PeakSpan[r]; d > MaxPeakSpan {
			return nil, fmt.Errorf("profile: Options.PeakSpan[%q] %v is longer than %v", r, d, MaxPeakSpan)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(opts.OverrunCost)) {
		if c := opts.OverrunCost[r]; c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
			return nil, fmt.Errorf("profile: Options.OverrunCost[%q] %v is not a finite non-negative number", r, c)
		}
	}
	for _, o := range []struct {
		name string
		n    int
	}{
		{"MinSamples", opts.MinSamples}, {"EvidenceBuckets", opts.EvidenceBuckets}, {"MaxFunctions", opts.MaxFunctions},
	} {
		if o.n < 0 {
			return nil, fmt.Errorf("profile: Options.%s is negative (%d)", o.name, o.n)
		}
	}
	if a.evBuckets < 4 || a.evBuckets > maxEvidenceBuckets {
		return nil, fmt.Errorf("profile: Options.EvidenceBuckets is %d; want 4 to %d", a.evBuckets, maxEvidenceBuckets)
	}
	if a.clock == nil {
		a.clock = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// price returns the overrun cost of resource r.
func (a *Analyzer) price(r hal.Resource) float64 {
	if c := a.overrunCost[r]; c > 0 {
		return c
	}
	return DefaultOverrunCost(r)
}

// peakSpan returns the peak span of resource r (0: none).
func (a *Analyzer) peakSpan(r hal.Resource) time.Duration {
	d, ok := a.peakSpans[r]
	switch {
	case !ok || d == 0:
		return DefaultPeakSpan(r)
	case d < 0:
		return 0
	}
	return d
}

// headroom returns the least headroom of resource r.
func (a *Analyzer) headroom(r hal.Resource) float64 {
	h, ok := a.headrooms[r]
	switch {
	case !ok || h == 0:
		return DefaultHeadroom(r)
	case h < 0:
		return 0
	}
	return h
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Observe feeds samples to the model. Samples with an empty function name,
// a zero time, or a negative, NaN or infinite quantity are dropped, logged
// and counted (see [Analyzer.Dropped]); the others are recorded. Observe
// does O(1) work per sample and resource.
func (a *Analyzer) Observe(samples ...Sample) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range samples {
		if err := a.observeLocked(&samples[i]); err != nil {
			a.dropped++
			a.log.Warn("profile: sample dropped", "err", err)
			continue
		}
		a.observed++
	}
}

func (a *Analyzer) observeLocked(s *Sample) error {
	switch {
	case s.Function == "":
		return errors.New("profile: sample has no function name")
	case s.Time.IsZero():
		return fmt.Errorf("profile: sample of function %q has no time", s.Function)
	case s.Calls < 0 || s.StateBytes < 0 || s.Latency < 0 || s.Interval < 0:
		return fmt.Errorf("profile: sample of function %q has a negative count, latency or interval", s.Function)
	}
	if err := s.Usage.Validate(); err != nil {
		return fmt.Errorf("profile: sample of function %q: %w", s.Function, err)
	}
	fm := a.funcs[s.Function]
	if fm == nil {
		if len(a.funcs) >= a.maxFuncs {
			return fmt.Errorf("profile: sample of function %q: already tracking MaxFunctions=%d functions", s.Function, a.maxFuncs)
		}
		fm = &functionModel{series: make(map[hal.Resource]*series, len(s.Usage))}
		fm.evidence.init(a.evBuckets)
		a.funcs[s.Function] = fm
	}
	for r, q := range s.Usage {
		sr := fm.series[r]
		if sr == nil {
			sr = &series{price: a.price(r), headroom: a.headroom(r), peakSpan: a.peakSpan(r)}
			fm.series[r] = sr
		}
		sr.observe(&a.params, s.Time, q)
	}
	fm.evidence.add(a.evBucket, s)
	fm.samples++
	if s.Time.After(fm.last) {
		fm.last = s.Time
	}
	return nil
}

// Dropped returns how many samples Observe has refused so far.
func (a *Analyzer) Dropped() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dropped
}

// Sample takes one round from every Collector, in order, and observes what
// they return. A failing collector does not stop the others: their
// samples are still observed, and the failures are returned together
// (a *multierror.Error). Sample returns ctx.Err() if ctx is done before
// it starts.
func (a *Analyzer) Sample(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("profile: sample: %w", err)
	}
	a.collectMu.Lock()
	defer a.collectMu.Unlock()
	var errs *multierror.Error
	for i, c := range a.collectors {
		if err := ctx.Err(); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("profile: sample: %w", err))
			break
		}
		samples, err := c.Collect(ctx)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("profile: collector #%d (%T): %w", i, c, err))
		}
		a.Observe(samples...)
	}
	return errs.ErrorOrNil()
}

// Forecast returns, for every function in functions, its demand during the
// next window (starting at Clock()) and its criticality verdict, sorted by
// name. Functions never observed get zero demand, zero confidence and a
// reason that says so. It returns an error wrapping [ErrBadFunction],
// [ErrDuplicateFunction], [ErrUnknownDependency], [ErrDependencyCycle] or
// [ErrUnknownCriticality], naming the function, when the functions are
// inconsistent, and ctx.Err() when ctx is done.
func (a *Analyzer) Forecast(ctx context.Context, window time.Duration, functions []Function) (Forecast, error) {
	if err := ctx.Err(); err != nil {
		return Forecast{}, fmt.Errorf("profile: forecast: %w", err)
	}
	if window <= 0 {
		return Forecast{}, fmt.Errorf("profile: forecast: window %v is not positive", window)
	}
	byName, err := validateFunctions(functions)
	if err != nil {
		return Forecast{}, fmt.Errorf("profile: forecast: %w", err)
	}
	at := a.clock()
	out := Forecast{Window: window, At: at, Functions: make([]FunctionForecast, 0, len(functions))}

	a.mu.Lock()
	var evidence map[string]*evidenceSummary
	for i, f := range functions {
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				a.mu.Unlock()
				return Forecast{}, fmt.Errorf("profile: forecast: %w", err)
			}
		}
		out.Functions = append(out.Functions, a.forecastLocked(f.Name, at, window))
	}
	evidence = a.summariseLocked(functions, at)
	a.mu.Unlock()

	judge(functions, byName, evidence, out.Functions)
	slices.SortFunc(out.Functions, func(x, y FunctionForecast) int {
		switch {
		case x.Function < y.Function:
			return -1
		case x.Function > y.Function:
			return 1
		}
		return 0
	})
	return out, nil
}

func (a *Analyzer) forecastLocked(name string, at time.Time, window time.Duration) FunctionForecast {
	ff := FunctionForecast{Function: name, P50: hal.Vector{}, P95: hal.Vector{}, P99: hal.Vector{}}
	fm := a.funcs[name]
	if fm == nil {
		return ff
	}
	ff.Samples = fm.samples
	conf := math.Inf(1)
	for _, r := range sortedResources(fm.series) {
		s := fm.series[r]
		q50, q95, q99, basis := s.forecast(&a.params, at, window)
		ff.P50[r], ff.P95[r], ff.P99[r] = q50, q95, q99
		ff.Basis = append(ff.Basis, string(r)+": "+basis)
		conf = math.Min(conf, s.confidence(&a.params, window))
	}
	if !math.IsInf(conf, 1) {
		ff.Confidence = conf
	}
	return ff
}

func sortedResources(m map[hal.Resource]*series) []hal.Resource {
	out := make([]hal.Resource, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}
