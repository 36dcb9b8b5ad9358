package hal

import (
	"fmt"
	"slices"
	"sync"
)

// Driver opens devices of one kind. config is driver-specific (most drivers
// take JSON); Open validates it and the environment up front and returns an
// error naming the field at fault.
type Driver interface {
	Open(config string) (Device, error)
}

// DriverFunc adapts a function to [Driver].
type DriverFunc func(config string) (Device, error)

// Open calls f(config).
func (f DriverFunc) Open(config string) (Device, error) { return f(config) }

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// Register makes a driver available by name to [Open]. It is meant to be
// called from a driver package's init. It panics if driver is nil, name is
// empty, or a driver is already registered under name.
func Register(name string, driver Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if driver == nil {
		panic("hal: Register driver is nil")
	}
	if name == "" {
		panic("hal: Register driver name is empty")
	}
	if _, dup := drivers[name]; dup {
		panic("hal: Register called twice for driver " + name)
	}
	drivers[name] = driver
}

// Drivers returns the names of the registered drivers, sorted.
func Drivers() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Open opens a device with the driver registered under name. Import the
// driver package (often for its side effect only) to register it.
func Open(name string, config string) (Device, error) {
	driversMu.RLock()
	d, ok := drivers[name]
	driversMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("hal: unknown driver %q (registered: %v; forgotten import?)", name, Drivers())
	}
	return OpenDriver(d, config)
}

// OpenDriver opens a device with d directly, without the global registry.
func OpenDriver(d Driver, config string) (Device, error) {
	dev, err := d.Open(config)
	if err != nil {
		return nil, fmt.Errorf("hal: open: %w", err)
	}
	return dev, nil
}
