package sim_test

import (
	"path/filepath"
	"testing"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/haltest"
	"github.com/updraft-dev/updraft/hal/sim"
)

func simState(d hal.Device) (any, error) { return d.(*sim.Device).Allocations(), nil }

// TestConformance runs the hal driver conformance suite on an in-memory
// device and on one whose state lives in a file, reopened as a new
// process would.
func TestConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		haltest.TestDevice(t, func(testing.TB) hal.Device { return sim.New(hal.Vector{hal.CPU: 4, hal.Memory: 1 << 30}) },
			haltest.Options{State: simState})
	})
	t.Run("state file with units", func(t *testing.T) {
		cfg := sim.Config{
			Capacity: hal.Vector{hal.CPU: 4, "nic.queue": 16, "nic.flow": 4096},
			Units:    map[hal.Resource]hal.Unit{"nic.queue": {Step: 1}, "nic.flow": {Step: 1, Min: 128}},
		}
		var path string // the state file of the device open returned last
		haltest.TestDevice(t, func(t testing.TB) hal.Device {
			c := cfg
			path = filepath.Join(t.TempDir(), "sim.json")
			c.StatePath = path
			d, err := sim.Open(c)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}, haltest.Options{
			State: simState,
			Reopen: func(testing.TB, hal.Device) (hal.Device, error) {
				c := cfg
				c.StatePath = path
				return sim.Open(c)
			},
		})
	})
}
