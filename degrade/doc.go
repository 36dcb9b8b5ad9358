// Package degrade is updraft's Adaptive Degradation Mode: while part of the
// machine is away for an update, it throttles, disables or sheds
// non-critical functions so the critical ones keep their latency, adapts
// concurrency limits to latency and system pressure, and tells users and
// the host plainly what is reduced, why and until when.
//
// A [Controller] holds one mode per named function:
//
//   - [Normal]: every request admitted (functions never Set are Normal, and
//     their admission costs one map lookup);
//   - [Throttle]: a rate limit (lock-free GCRA token bucket) and/or a
//     concurrency limit, fixed or adaptive (AIMD on latency, tightened by
//     PSI pressure); excess requests get [ErrThrottled], HTTP 429;
//   - [Disable]: every request gets [ErrDisabled], HTTP 503;
//   - [Shed]: an exact share of requests, lowest [Priority] first, gets
//     [ErrShed], HTTP 503.
//
// Every degradation is a window with a deadline and ends by itself then, so
// a lost Clear never leaves a function stuck disabled.
//
// Sketch of use:
//
//	ctl := degrade.MustNew(degrade.Options{Logger: logger})
//	mux.Handle("/search", ctl.Middleware("search", searchHandler))
//	mux.Handle("/status/degradation", ctl.StatusHandler())
//	cancel := ctl.Subscribe(func(ev degrade.Event) { notify <- ev })
//	defer cancel()
//
//	// Before the update: search at 50 req/s for the next ten minutes.
//	err := ctl.Set("search", degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 50, Burst: 10},
//		"the data plane is being updated", time.Now().Add(10*time.Minute))
//	...
//	// After it: back to normal (or wait for the window to end).
//	err = ctl.Clear("search")
//
// Code that is not HTTP calls [Controller.Acquire] around each request (and
// [WriteRejection] if it wants the middleware's answers), or
// [Controller.Allow] when a request needs no release. [Controller.Run]
// polls a [PressureSource] — [NewPSI] for the machine, [NewCgroupPSI] for
// one cgroup v2 group — to tighten adaptive limits under pressure;
// [Controller.Collector] exports Prometheus metrics for the host to
// register. gRPC servers use the sub-package degradegrpc, which keeps gRPC
// out of this package's dependencies.
//
// Rejections are errors wrapping the sentinels above and are
// [*RejectedError] values (errors.As) with Retry-After and a user message.
// Configuration mistakes wrap [ErrUnknownFunction], [ErrInvalidPolicy],
// [ErrWindowPassed] or [ErrWindowTooLong].
package degrade
