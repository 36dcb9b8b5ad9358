// Package linux is the hal driver for a Linux host: it partitions the
// machine's CPUs, memory and (optionally) block I/O between a data-plane binary's functions with
// control groups, through github.com/opencontainers/cgroups (the fs manager
// on cgroup v1, fs2 on the v2 unified hierarchy).
//
// A [Config] binds each function either to a cgroup it already runs in
// ([Binding.Cgroup]) or to process and thread IDs ([Binding.PIDs]) that the
// driver moves into a cgroup it creates under [Config.Parent]. [New]
// checks every binding and the permissions it needs before returning, so a
// mistake surfaces at start-up rather than in the middle of an update.
//
//	dev, err := linux.New(linux.Config{
//		Bindings: []linux.Binding{
//			{Function: "forward", Cgroup: "dataplane/forward"},
//			{Function: "stats", PIDs: []int{statsPID}},
//		},
//	})
//	capacity, err := dev.Capacity(ctx) // cpu cores and memory bytes this process may use
//	undo, err := dev.Apply(ctx, []hal.Allocation{
//		{Function: "forward", Guarantee: hal.Vector{hal.CPU: 1}, Limit: hal.Vector{hal.CPU: 2}},
//		{Function: "stats", Guarantee: hal.Vector{hal.CPU: 0.25}, Limit: hal.Vector{hal.CPU: 0.5, hal.Memory: 256 << 20}},
//	})
//	defer undo(ctx) // every value back as it was, processes back home, created cgroups removed
//
// The package registers itself as the hal driver "linux"; the driver's
// configuration is [Config] as JSON:
//
//	dev, err := hal.Open("linux", `{"bindings": [{"function": "stats", "pids": [4242]}]}`)
//
// # How an allocation maps to cgroup values
//
// An allocation that names [hal.CPU] (as a guarantee, a limit or both) sets
// all of the function's CPU values; one that names [hal.Memory] sets all of
// its memory values. A resource the allocation does not name is left alone.
//
//   - CPU guarantee: a proportional weight, the guarantee's fraction of
//     [Device.Capacity] scaled to the controller's range
//     (cpu.shares = fraction × 262144 on v1, cpu.weight = fraction × 10000 on
//     v2), so guaranteed functions win against unmanaged processes; no
//     guarantee gives the lowest weight.
//   - CPU limit: a CFS quota of limit × [CPUPeriod] (cpu.cfs_quota_us and
//     cpu.cfs_period_us on v1, cpu.max on v2); no limit means unlimited.
//   - [Binding.CPUs]: cpuset.cpus, when set.
//   - Memory limit: memory.limit_in_bytes, and memory.memsw.limit_in_bytes
//     set equal to it where the kernel has it (swap accounting on), so the
//     limit cannot be escaped into swap, on v1; memory.max with
//     memory.swap.max 0 on v2; no limit means unlimited.
//   - Memory guarantee: memory.min and memory.low on v2; the soft limit
//     (memory.soft_limit_in_bytes) on v1, which has no hard protection.
//   - I/O (only with [Config.IO], which names the block devices and their
//     bandwidth, reported as the [hal.IO] capacity): the limit throttles
//     reads and writes, each, on every configured device
//     (blkio.throttle.read_bps_device and write_bps_device on v1, io.max on
//     v2); the guarantee sets a weight proportional to its fraction of the
//     bandwidth where the kernel has one (BFQ's blkio.bfq.weight or
//     blkio.weight on v1, io.bfq.weight or io.weight on v2) and is otherwise
//     not enforced. Without Config.IO an allocation naming [hal.IO] is
//     refused with [ErrUnsupportedResource].
//
// Limits beyond what a cgroup file can hold mean "unlimited". Guarantees of one Apply that together
// exceed [Device.Capacity] are refused with [ErrOverCapacity] naming the
// resource, before anything changes.
//
// The cgroup the driver creates for a PIDs binding lives in
// Parent/<function>. An Apply that allocates CPU (or, on v2, memory) to
// PIDs-bound functions also gives Parent the weight (and memory protection)
// of those functions' guarantees together, so they hold against the rest of
// the machine; undo puts Parent's values back or removes Parent if the Apply
// created it. Ancestors of a bound, pre-existing cgroup are not changed: its
// guarantee holds against its siblings only.
//
// # Undo
//
// The [hal.Undo] that [Device.Apply] returns writes back every file Apply
// changed to the exact text it read before, moves every process and thread
// back to the cgroups it came from (processes that exited meanwhile are
// skipped), moves processes forked inside a created cgroup to where the
// binding's first process came from, and removes the cgroups Apply created.
// It is idempotent and safe to retry after a failure. If Apply itself fails
// midway, it undoes what it had done before returning.
//
// # Optional interfaces
//
// *Device implements [hal.Meter]: [Device.Usage] measures a function's CPU
// cores and memory bytes now. It implements [hal.Journaled] too (see
// [Device.ApplyJournaled]). It passes hal/haltest's conformance suite on
// the fixture trees and, as root, on real cgroups (a function bound to an
// existing cgroup, one to a process moved into a created cgroup).
//
// All methods of *Device are safe for concurrent use; Apply and the Undo it
// returns are serialised by the device.
package linux
