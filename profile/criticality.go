package profile

import (
	"fmt"
	"math"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"gonum.org/v1/gonum/stat"
)

// Thresholds of the evidence rules, exported so hosts can read what the
// verdicts mean.
const (
	// FollowsCorrelation is the Pearson correlation between a function's
	// activity and the critical entry points' request rate at or above
	// which an Auto function is judged critical.
	FollowsCorrelation = 0.7
	// MinEvidenceBuckets is the number of activity buckets both series
	// must share before a correlation is trusted.
	MinEvidenceBuckets = 10
	// SteadyActiveShare is the share of observed buckets in which a
	// function must be active to count as steady rather than batch.
	SteadyActiveShare = 0.8
)

// evidence is a ring of per-bucket activity: calls, mean CPU and state
// bytes written, indexed by absolute bucket number (time / bucket width).
type evidence struct {
	calls, cpu, state []float64
	seen              []int32
	head              int64 // absolute index of the newest bucket; valid when started
	started           bool
	totalCalls        float64
	totalState        float64
}

func (e *evidence) init(n int) {
	e.calls = make([]float64, n)
	e.cpu = make([]float64, n)
	e.state = make([]float64, n)
	e.seen = make([]int32, n)
}

func (e *evidence) add(width time.Duration, s *Sample) {
	n := int64(len(e.seen))
	idx := s.Time.UnixNano() / int64(width)
	if !e.started {
		e.head, e.started = idx, true
	}
	if idx > e.head {
		for i := e.head + 1; i <= idx && i <= e.head+n; i++ {
			e.clear(i)
		}
		e.head = idx
	}
	if idx <= e.head-n {
		return // older than the ring remembers
	}
	slot := mod(idx, n)
	e.calls[slot] += float64(s.Calls)
	e.state[slot] += float64(s.StateBytes)
	if cpu, ok := s.Usage[hal.CPU]; ok {
		e.cpu[slot] += cpu
	}
	e.seen[slot]++
	e.totalCalls += float64(s.Calls)
	e.totalState += float64(s.StateBytes)
}

func (e *evidence) clear(idx int64) {
	slot := mod(idx, int64(len(e.seen)))
	e.calls[slot], e.cpu[slot], e.state[slot], e.seen[slot] = 0, 0, 0, 0
}

func mod(a, n int64) int64 { return ((a % n) + n) % n }

// evidenceSummary is one function's activity over the buckets ending at
// the forecast time, aligned with every other function's.
type evidenceSummary struct {
	activity   []float64 // calls per bucket if the function counts calls, else mean CPU cores
	calls      []float64
	seen       []bool
	usesCalls  bool
	stateBytes float64 // written within the aligned buckets
	span       time.Duration
}

func (a *Analyzer) summariseLocked(functions []Function, at time.Time) map[string]*evidenceSummary {
	n := int64(a.evBuckets)
	end := at.UnixNano() / int64(a.evBucket)
	out := make(map[string]*evidenceSummary, len(functions))
	// Only Auto functions and entry points are judged from evidence; their
	// summaries share three backing arrays to keep allocations few.
	needed := 0
	for _, f := range functions {
		if f.Criticality == Auto || f.EntryPoint {
			needed++
		}
	}
	floats := make([]float64, 2*int64(needed)*n)
	bools := make([]bool, int64(needed)*n)
	sums := make([]evidenceSummary, needed)
	used := 0
	for _, f := range functions {
		fm := a.funcs[f.Name]
		if fm == nil || !fm.evidence.started || (f.Criticality != Auto && !f.EntryPoint) {
			continue
		}
		e := &fm.evidence
		sum := &sums[used]
		*sum = evidenceSummary{
			activity: floats[:n:n], calls: floats[n : 2*n : 2*n], seen: bools[:n:n],
			usesCalls: e.totalCalls > 0, span: time.Duration(n) * a.evBucket,
		}
		floats, bools = floats[2*n:], bools[n:]
		used++
		for k := int64(0); k < n; k++ {
			idx := end - n + 1 + k
			if idx > e.head || idx <= e.head-n {
				continue
			}
			slot := mod(idx, n)
			if e.seen[slot] == 0 {
				continue
			}
			sum.seen[k] = true
			sum.calls[k] = e.calls[slot]
			sum.stateBytes += e.state[slot]
			if sum.usesCalls {
				sum.activity[k] = e.calls[slot]
			} else {
				sum.activity[k] = e.cpu[slot] / float64(e.seen[slot])
			}
		}
		out[f.Name] = sum
	}
	return out
}

// activeShare is the share of observed buckets with non-zero activity,
// and the number of observed buckets.
func (s *evidenceSummary) activeShare() (float64, int) {
	seen, active := 0, 0
	for k, ok := range s.seen {
		if !ok {
			continue
		}
		seen++
		if s.activity[k] > 0 {
			active++
		}
	}
	if seen == 0 {
		return 0, 0
	}
	return float64(active) / float64(seen), seen
}

// correlate returns the Pearson correlation of s's activity with ref over
// the buckets both observed, and how many there were.
func (s *evidenceSummary) correlate(ref []float64, refSeen []bool, scratch *[2][]float64) (float64, int) {
	x, y := scratch[0][:0], scratch[1][:0]
	defer func() { scratch[0], scratch[1] = x, y }()
	for k := range s.seen {
		if s.seen[k] && refSeen[k] {
			x = append(x, s.activity[k])
			y = append(y, ref[k])
		}
	}
	if len(x) < MinEvidenceBuckets {
		return 0, len(x)
	}
	r := stat.Correlation(x, y, nil)
	if math.IsNaN(r) {
		return 0, len(x) // one side is constant: no evidence either way
	}
	return r, len(x)
}

// judge fills Critical and Reasons in forecasts (in the order of
// functions): annotations first, then Auto entry points, then other Auto
// functions against the critical entry points' request rate, then the
// dependency closure of everything critical.
func judge(functions []Function, byName map[string]*Function, ev map[string]*evidenceSummary, forecasts []FunctionForecast) {
	verdict := make(map[string]*FunctionForecast, len(functions))
	for i := range forecasts {
		verdict[forecasts[i].Function] = &forecasts[i]
	}
	for _, f := range functions {
		v := verdict[f.Name]
		switch f.Criticality {
		case Critical:
			v.Critical = true
			v.Reasons = append(v.Reasons, "annotated critical by the host")
		case NonCritical:
			v.Reasons = append(v.Reasons, "annotated non-critical by the host")
		}
	}
	for _, f := range functions {
		if f.Criticality == Auto && f.EntryPoint {
			judgeEntryPoint(verdict[f.Name], ev[f.Name])
		}
	}

	// The reference request rate: the sum of the critical entry points'.
	var ref []float64
	var refSeen []bool
	var refNames []string
	for _, f := range functions {
		s := ev[f.Name]
		if !f.EntryPoint || !verdict[f.Name].Critical || s == nil || !s.usesCalls {
			continue
		}
		if ref == nil {
			ref, refSeen = make([]float64, len(s.calls)), make([]bool, len(s.calls))
		}
		for k := range s.calls {
			ref[k] += s.calls[k]
			refSeen[k] = refSeen[k] || s.seen[k]
		}
		refNames = append(refNames, fmt.Sprintf("%q", f.Name))
	}
	var scratch [2][]float64
	for _, f := range functions {
		if f.Criticality == Auto && !f.EntryPoint {
			judgeAuto(verdict[f.Name], ev[f.Name], ref, refSeen, refNames, &scratch)
		}
	}
	propagate(functions, byName, verdict)
}

func judgeEntryPoint(v *FunctionForecast, s *evidenceSummary) {
	if s == nil {
		v.Reasons = append(v.Reasons, "auto: entry point never observed, so no evidence it serves requests; judged non-critical")
		return
	}
	share, seen := s.activeShare()
	total := 0.0
	for _, c := range s.calls {
		total += c
	}
	if s.usesCalls && share >= SteadyActiveShare {
		v.Critical = true
		v.Reasons = append(v.Reasons, fmt.Sprintf("auto: request entry point with steady traffic (%.0f calls in %d of the last %d buckets observed, active in %.0f%% of them)",
			total, seen, len(s.seen), 100*share))
		return
	}
	v.Reasons = append(v.Reasons, fmt.Sprintf("auto: entry point with intermittent or no traffic (%.0f calls, active in %.0f%% of %d observed buckets); judged non-critical",
		total, 100*share, seen))
}

func judgeAuto(v *FunctionForecast, s *evidenceSummary, ref []float64, refSeen []bool, refNames []string, scratch *[2][]float64) {
	if s == nil {
		v.Reasons = append(v.Reasons, "auto: never observed, so no evidence it is critical; judged non-critical (annotate it to decide)")
		return
	}
	share, seen := s.activeShare()
	what := "CPU use"
	if s.usesCalls {
		what = "call rate"
	}
	if ref != nil {
		r, shared := s.correlate(ref, refSeen, scratch)
		if shared >= MinEvidenceBuckets && r >= FollowsCorrelation {
			v.Critical = true
			v.Reasons = append(v.Reasons, fmt.Sprintf("auto: its %s follows the request rate of critical entry point(s) %s (correlation %.2f over %d buckets)",
				what, joinNames(refNames), r, shared))
			return
		}
		if shared >= MinEvidenceBuckets {
			v.Reasons = append(v.Reasons, fmt.Sprintf("auto: its %s does not follow the request rate of %s (correlation %.2f over %d buckets)",
				what, joinNames(refNames), r, shared))
		} else {
			v.Reasons = append(v.Reasons, fmt.Sprintf("auto: only %d buckets shared with the entry points' request rate, too few (need %d) to compare", shared, MinEvidenceBuckets))
		}
	} else {
		v.Reasons = append(v.Reasons, "auto: no critical entry point with observed calls to compare with")
	}
	switch {
	case s.stateBytes > 0 && share >= SteadyActiveShare:
		v.Critical = true
		v.Reasons = append(v.Reasons, fmt.Sprintf("auto: writes state steadily (%s in the last %v, active in %.0f%% of %d observed buckets)",
			hal.FormatQuantity(hal.Memory, s.stateBytes), s.span, 100*share, seen))
	case seen > 0 && share < SteadyActiveShare:
		v.Reasons = append(v.Reasons, fmt.Sprintf("auto: periodic or batch work (active in %.0f%% of %d observed buckets); judged non-critical", 100*share, seen))
	default:
		v.Reasons = append(v.Reasons, "auto: steady but independent of the critical requests and writes no state; judged non-critical")
	}
}

// propagate marks critical everything a critical function depends on,
// transitively, naming the dependant in the reason.
func propagate(functions []Function, byName map[string]*Function, verdict map[string]*FunctionForecast) {
	var queue []string
	for _, f := range functions {
		if verdict[f.Name].Critical {
			queue = append(queue, f.Name)
		}
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		for _, d := range byName[name].DependsOn {
			v := verdict[d]
			if v.Critical {
				continue
			}
			v.Critical = true
			reason := fmt.Sprintf("critical because %q (critical) depends on it", name)
			if byName[d].Criticality == NonCritical {
				reason += ", overriding the host's non-critical annotation"
			}
			v.Reasons = append(v.Reasons, reason)
			queue = append(queue, d)
		}
	}
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
