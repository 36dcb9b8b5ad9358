// Package partition plans how a device's resources are shared among the
// functions of a data-plane application while it is being updated.
//
// A [Partitioner] takes the capacity of a device (a [hal.Vector], for
// example from [hal.Device.Capacity]) and one [Demand] per function, as the
// profiler forecasts it, and returns a [Plan]: one [hal.Allocation] per
// function that fits, a reserve kept for bursts, and the functions that do
// not fit, ranked as candidates to migrate or degrade. [Planner], built by
// [New], is the implementation most callers want:
//
//	planner, err := partition.New(partition.Options{}) // 10% margin, 10% reserve
//	plan, err := planner.Plan(ctx, capacity, demands)
//	var short *partition.ShortfallError
//	if errors.As(err, &short) {
//		// short.Shortfall says, per resource, how much is missing
//	}
//	undo, err := device.Apply(ctx, plan.Allocations)
//
// # How a plan is made
//
// Planning happens in three steps, every one deterministic: the plan
// depends on the set of demands only, not on their order.
//
//  1. Critical functions are guaranteed their forecast peak (the larger of
//     Peak and Expected) plus a margin ([DefaultMargin], 10%). If those
//     guarantees do not fit in the capacity, Plan returns a
//     [*ShortfallError] naming each short resource and the critical
//     functions that need it, and nothing else is planned.
//  2. A reserve of [DefaultReserve] (10%) of each resource is set aside,
//     less where the critical guarantees need it.
//  3. Non-critical functions share what is left by a weighted fair fill.
//     One common level L rises from zero; at level L a non-critical
//     function of weight w holds min(1, w*L) of its peak vector. It joins
//     once that fraction covers its minimum on every resource, and stops
//     growing at its peak. L rises until a resource runs out or the next
//     function to join does not fit; that function and every one that
//     would join later are listed in [Plan.DoesNotFit], highest join level
//     first, and get no allocation.
//
// Whatever nobody was guaranteed joins the reserve, and the reserve is
// lent to the critical functions: a critical function's Limit is its
// guarantee plus the reserve, so burst headroom is not left idle. A
// non-critical function's Limit is its guarantee.
//
// # Why a common fill level and not dominant-resource fairness or an LP
//
// The fill gives every non-critical function the same weighted fraction of
// its own forecast, across all resources at once: a function's fair share
// is measured against its own need, which is what the update window cares
// about (can it keep working?), and it is the weighted max-min fair
// allocation for that measure. It keeps two properties the orchestrator
// relies on and that neither alternative keeps:
//
//   - More capacity never shrinks anyone's guarantee, nor a non-critical
//     function's limit. Every holding is a non-decreasing function of L
//     and L a non-decreasing function of the capacity. (A critical
//     function's limit includes the reserve, which more capacity can
//     shrink by letting more non-critical functions in.) Progressive-filling DRF lets functions that do not use an
//     exhausted resource keep growing, and is not resource monotonic: the
//     DRF paper itself shows that no policy with its sharing incentive and
//     Pareto efficiency can be (Ghodsi et al., "Dominant Resource
//     Fairness", NSDI 2011). An LP optimum may jump between vertices.
//     For the same reason the fill stops at the first function that does
//     not fit instead of skipping it: skipping lets a larger capacity
//     admit an earlier function that then evicts a later one (the
//     property tests catch exactly that if the stop is removed).
//   - Speed: the fill is one radix sort and one sweep over at most 2n
//     events, so planning is linear in the functions once they are sorted
//     by name, and 100 000 functions plan in about a tenth of a second,
//     less than merely copying their demands into allocations costs
//     (BenchmarkPlan measures both). gonum's dense Simplex on the same LP is already more
//     than ten times slower at 10 functions, and at 1000 it takes most of
//     a minute, four orders of magnitude slower.
//
// The price is efficiency: capacity left over after the fill stops is not
// pushed to the functions that could still use it. It is not idle either:
// it joins the reserve that critical functions may burst into.
//
// Plans of many functions are also built on several cores: loading the
// demands and building the allocations' vectors split into chunks of at
// least 8192 functions, one goroutine each, up to GOMAXPROCS
// ([Options.Workers] bounds it). Chunking never shows in the plan.
//
// # Explanations
//
// [Plan.Explain] says in words why a function got what it got. The words
// are written when asked for, from what the plan keeps, so a plan of
// 100 000 functions does not carry 100 000 strings; only the reasons of
// the functions that do not fit ([Misfit.Reason]) are written up front.
//
// Resources with a natural unit (queues, flow-table entries) are planned in
// whole units with [Options.Granularity]: critical guarantees round up,
// non-critical ones round down, the remainder joins the reserve.
package partition
