// Package sim is a deterministic in-memory [hal.Device] for tests and
// examples. It has a configurable capacity, records every allocation it was
// asked to apply, refuses allocations whose guarantees exceed its capacity,
// and can be told to fail Apply or Undo, or to be slow, so orchestration
// code can be tested on every failure path without hardware.
//
//	dev := sim.New(hal.Vector{hal.CPU: 8, hal.Memory: 16 << 30})
//	dev.FailApply(errors.New("card busy")) // the next Apply fails
//
// The package registers itself as the "sim" driver; its config is JSON:
//
//	{"capacity": {"cpu": 8, "memory": 17179869184}}
package sim
