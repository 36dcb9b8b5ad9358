package migrate

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Candidate is a healthy target that is allowed for a function and has
// room for it, as a [Policy] sees it.
type Candidate struct {
	Info    TargetInfo
	Latency time.Duration // measured by the last probe
	// Placed counts the functions already placed on this target by the
	// same Migrate call; ProviderPlaced counts those placed with the
	// target's provider.
	Placed         int
	ProviderPlaced int
}

// Policy orders candidate targets for one function. Rank returns the
// candidates best first and a sentence explaining why the first one leads.
// The Mover has already dropped unhealthy targets, targets outside the
// function's Regions, and targets without room; cands is never empty.
type Policy interface {
	Rank(spec Spec, cands []Candidate) ([]Candidate, string)
}

// Built-in policies.
var (
	_ Policy = CheapestFit{}
	_ Policy = LowestLatency{}
	_ Policy = SpreadProviders{}
)

// CheapestFit prefers the lowest CostPerMillion, then the lowest latency.
// It is the Mover's default.
type CheapestFit struct{}

// Rank implements [Policy].
func (CheapestFit) Rank(_ Spec, cands []Candidate) ([]Candidate, string) {
	out := slices.Clone(cands)
	slices.SortStableFunc(out, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(a.Info.CostPerMillion, b.Info.CostPerMillion),
			cmp.Compare(a.Latency, b.Latency), cmp.Compare(a.Info.Name, b.Info.Name))
	})
	return out, fmt.Sprintf("cheapest fitting target (%.4g per million invocations, %v round trip) of %d candidates",
		out[0].Info.CostPerMillion, out[0].Latency.Round(time.Microsecond), len(out))
}

// LowestLatency prefers the lowest measured round trip, then the cheapest.
type LowestLatency struct{}

// Rank implements [Policy].
func (LowestLatency) Rank(_ Spec, cands []Candidate) ([]Candidate, string) {
	out := slices.Clone(cands)
	slices.SortStableFunc(out, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(a.Latency, b.Latency),
			cmp.Compare(a.Info.CostPerMillion, b.Info.CostPerMillion), cmp.Compare(a.Info.Name, b.Info.Name))
	})
	return out, fmt.Sprintf("lowest measured latency (%v) of %d candidates",
		out[0].Latency.Round(time.Microsecond), len(out))
}

// SpreadProviders prefers the provider with the fewest functions placed so
// far in this Migrate, then the target with the fewest, then the cheapest,
// so that one provider's outage takes as few functions as possible.
type SpreadProviders struct{}

// Rank implements [Policy].
func (SpreadProviders) Rank(_ Spec, cands []Candidate) ([]Candidate, string) {
	out := slices.Clone(cands)
	slices.SortStableFunc(out, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(a.ProviderPlaced, b.ProviderPlaced), cmp.Compare(a.Placed, b.Placed),
			cmp.Compare(a.Info.CostPerMillion, b.Info.CostPerMillion), cmp.Compare(a.Info.Name, b.Info.Name))
	})
	return out, fmt.Sprintf("spread across providers: provider %q hosts %d functions so far, the fewest of %d candidates",
		out[0].Info.Provider, out[0].ProviderPlaced, len(out))
}
