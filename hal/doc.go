// Package hal is updraft's hardware abstraction layer: the one vocabulary
// every other package shares for resources and quantities, and the interface
// a data-plane device implements so the same orchestration runs on any
// hardware.
//
// A [Vector] maps a [Resource] to a quantity in the resource's documented
// unit: [CPU] in cores, [Memory] in bytes, [IO] in bytes per second, or a
// device-specific unit such as "nic.queue" (a count). A [Device] reports its
// [Device.Capacity] and enforces a set of [Allocation]s with [Device.Apply],
// returning an [Undo] that puts back exactly what was there before.
//
// Drivers register like database/sql drivers:
//
//	func init() { hal.Register("offloadcard", cardDriver{}) }
//
//	dev, err := hal.Open("offloadcard", `{"queues": 64}`)
//
// [Register] panics on a nil or duplicate driver (a programmer error at
// init); [Drivers] lists the registered names, sorted. Code that does not
// want the global registry calls a driver's constructor directly (for
// example sim.New), or [OpenDriver] with a Driver value: the registry's
// path without the registry.
//
// Optional interfaces extend a Device without fattening it; callers check
// them with a type assertion:
//
//   - [Meter]: the device can measure a function's current usage.
//   - [Journaled]: the device's Apply can be undone from a durable record,
//     in this process or a new one.
//   - [Units]: the device hands out some resources in whole steps (queue
//     slots, flow entries) and says so, so a planner gives it only amounts
//     it accepts.
//
// A driver's author checks it against what callers rely on with the
// conformance suite in hal/haltest, run from the driver's own tests.
//
// [Combine] joins several devices (the host's CPUs and memory through
// hal/linux, an offload card through its own driver) into one, so a planner
// sees a single capacity vector.
package hal
