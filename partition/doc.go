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
// A plan is a function of the capacity and the demands only: not of the
// functions' names, nor of the order they are listed in. Renaming or
// reordering functions changes nothing but the names in the plan (the
// property tests check it on random inputs). The one exception is
// unavoidable: between demands that are equal in everything but the name,
// when only some of them fit, names decide which ones.
//
// Planning happens in four steps:
//
//  1. Critical functions are guaranteed their forecast peak (the larger of
//     Peak and Expected) plus a margin ([DefaultMargin], 10%). If those
//     guarantees do not fit in the capacity, Plan returns a
//     [*ShortfallError] naming each short resource and the critical
//     functions that need it, and nothing else is planned.
//  2. The reserve rule: [DefaultReserve] (10%) of each resource is set
//     aside, less where the critical guarantees need it. What remains,
//     capacity × (1 − reserve) − critical guarantees (never below zero),
//     is what the non-critical functions share.
//  3. The fair fill. One common level L rises from zero; at level L a
//     non-critical function of weight w holds min(1, w×L) of its peak
//     vector. It joins at the level where that fraction first covers its
//     minimum on every resource (L = need/w, where need is the largest
//     Min/peak ratio over its resources), and stops growing at its peak.
//     Functions that join at the same level join smallest first: their
//     minimums compared resource by resource (resources in name order),
//     then their peaks, then their weights. L rises until a resource runs
//     out or the next function to join does not fit; there the fill stops.
//  4. The second pass: every non-critical function the fill did not admit
//     is offered its minimum (Min, or Expected when Min is nil), smallest
//     first — smallest meaning the least largest fraction of the capacity
//     its minimum takes on any resource, ties as in step 3 — and gets
//     exactly its minimum if it fits in what is still free after step 2's
//     share and every guarantee given so far. The functions that still do
//     not fit are listed in [Plan.DoesNotFit], the one that would join the
//     fill last first, and get no allocation.
//
// So a non-critical function is left out only if its minimum does not fit
// in capacity × (1 − reserve) − critical guarantees − the other
// guarantees, on some resource; [Misfit.Reason] names that resource. A
// user can check a plan by hand: add up the guarantees, and compare each
// misfit's [Misfit.Need] with what is left.
//
// For example, with 4 cores, a critical function needing 1 core and two
// others needing 0.5 and 10 cores: the critical one gets 1.1 (10% margin),
// 0.4 is reserved, 2.5 remain; the fill reaches both others at level 1
// (their full need), the 10 cores do not fit and the fill stops; the
// second pass gives the other its 0.5, whatever it is called.
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
//   - More capacity never shrinks the guarantee of a critical function or
//     of a function the fill (step 3) admitted, nor takes its allocation
//     away. Every holding in the fill is a non-decreasing function of L,
//     L a non-decreasing function of the capacity, and the order in which
//     functions join does not depend on the capacity. (A critical
//     function's limit includes the reserve, which more capacity can
//     shrink by letting more non-critical functions in.)
//     Progressive-filling DRF lets functions that do not use an exhausted
//     resource keep growing, and is not resource monotonic: the DRF paper
//     itself shows that no policy with its sharing incentive and Pareto
//     efficiency can be (Ghodsi et al., "Dominant Resource Fairness", NSDI
//     2011). An LP optimum may jump between vertices. For the same reason
//     the fill stops at the first function that does not fit instead of
//     skipping it: skipping lets a larger capacity admit an earlier
//     function that then evicts a later one (the property tests catch
//     exactly that if the stop is removed). The second pass (step 4) makes
//     no such promise: it uses only what the fill left, and a larger
//     capacity, by raising the fill, may use up the room a second-pass
//     function had.
//   - Speed: the fill is one radix sort and one sweep over at most 2n
//     events (ties ordered by the demands, not the names), and the second
//     pass one sort of the functions the fill left out. BenchmarkPlan
//     measures 10 to 100 000 functions beside the cost of merely copying
//     their demands into allocations, and beside gonum's dense Simplex on
//     the same LP (see benchmarks/partition and benchmarks/plan).
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
// Resources with a natural unit (queue slots, flow-table entries) are
// planned in whole units with [Options.Units] (a step and a least non-zero
// amount per resource: for a driver that implements [hal.Units],
// Options{Units: hal.UnitsOf(device)}) or, step only, [Options.Granularity]: critical guarantees round up
// (never below the demand plus the margin; if the rounded guarantees do
// not fit, the [*ShortfallError] says that rounding was applied),
// non-critical ones round down, and to zero below the minimum; a
// non-critical function's minimum rounds up, so a function is never given
// less than it asked for. The remainder joins the reserve.
package partition
