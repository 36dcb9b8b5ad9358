// Package cgroupfs is the one reader of cgroup files and pressure stall
// information (PSI) for profile, degrade and hal/linux.
//
// [Detect] tells a cgroup v2 unified hierarchy (the root holds
// cgroup.controllers) from v1 hierarchies (root/cpu, root/memory, ...; on a
// v1 "hybrid" host root/unified is a cgroup2 mount that carries PSI files
// but no controllers). The [Layout] it returns maps a controller and a
// cgroup path to a directory, and [Layout.PressureDir] to the directory of
// its per-cgroup *.pressure files.
//
// Usage is read through github.com/opencontainers/cgroups/fscommon
// ([ReadUint], [ReadKey], [CPUUsage], [MemoryUsage], [MemoryPeak]);
// system-wide PSI (/proc/pressure/*) through github.com/prometheus/procfs
// ([SystemPressure]); the per-cgroup files that neither library parses for a
// caller — *.pressure, io.stat, blkio.throttle.io_service_bytes — by
// [ParsePressure], [ParseIOStat] and [ParseBlkio], each of which names the
// file and line at fault.
package cgroupfs
