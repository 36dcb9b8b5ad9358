package linux

import (
	"errors"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

func init() { hal.Register("linux", hal.DriverFunc(open)) }

func open(config string) (hal.Device, error) {
	c, err := ParseConfig(config)
	if err != nil {
		return nil, err
	}
	d, err := New(c)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return d, nil
}

// Errors callers branch on; check with errors.Is. Permission problems wrap
// fs.ErrPermission.
var (
	// ErrNotSupported: the driver runs only on Linux; elsewhere New
	// returns it after checking the configuration.
	ErrNotSupported = errors.New("linux: cgroups are only available on Linux")
	// ErrNoCgroup: a binding names a cgroup that does not exist.
	ErrNoCgroup = errors.New("linux: no such cgroup")
	// ErrNoProcess: a binding names a process or thread that does not exist.
	ErrNoProcess = errors.New("linux: no such process")
	// ErrUnsupportedResource: an allocation names a resource this driver
	// does not enforce.
	ErrUnsupportedResource = errors.New("linux: unsupported resource")
	// ErrOverCapacity: the guarantees of one Apply together exceed what
	// [Device.Capacity] reports.
	ErrOverCapacity = errors.New("linux: guarantees exceed capacity")
)

// Limits of the mapping from allocations to cgroup values.
const (
	MinCPULimit    = 0.01    // cores: the smallest CPU limit, a CFS quota of 1 ms per period
	MinMemoryLimit = 1 << 20 // bytes: the smallest memory limit
	CPUPeriod      = 100000  // CFS period in microseconds the driver sets (the kernel default)
)

// UsageWindow is how long [Device.Usage] watches a function's CPU time to
// turn it into cores.
const UsageWindow = 100 * time.Millisecond
