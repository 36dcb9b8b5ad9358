package haltest_test

import (
	"path/filepath"
	"testing"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/haltest"
	"github.com/updraft-dev/updraft/hal/sim"
)

// TestCombine runs the suite on hal.Combine of a host and a card with
// whole-unit resources, both keeping their state in files, so the
// combined device reopened from them undoes from the combined record.
func TestCombine(t *testing.T) {
	host := sim.Config{Capacity: hal.Vector{hal.CPU: 4, hal.Memory: 1 << 30}}
	card := sim.Config{
		Capacity: hal.Vector{"nic.queue": 16, "nic.flow": 4096},
		Units:    map[hal.Resource]hal.Unit{"nic.queue": {Step: 1}, "nic.flow": {Step: 1, Min: 128}},
	}
	var dir string // of the devices open returned last
	reopen := func() (hal.Device, *sim.Device, *sim.Device, error) {
		h, c := host, card
		h.StatePath, c.StatePath = filepath.Join(dir, "host.json"), filepath.Join(dir, "card.json")
		hd, err := sim.Open(h)
		if err != nil {
			return nil, nil, nil, err
		}
		cd, err := sim.Open(c)
		if err != nil {
			return nil, nil, nil, err
		}
		return hal.Combine(hd, cd), hd, cd, nil
	}
	parts := map[hal.Device][2]*sim.Device{}
	haltest.TestDevice(t, func(t testing.TB) hal.Device {
		dir = t.TempDir()
		d, hd, cd, err := reopen()
		if err != nil {
			t.Fatal(err)
		}
		parts[d] = [2]*sim.Device{hd, cd}
		return d
	}, haltest.Options{
		State: func(d hal.Device) (any, error) {
			p := parts[d]
			return [2]map[string]hal.Allocation{p[0].Allocations(), p[1].Allocations()}, nil
		},
		Reopen: func(testing.TB, hal.Device) (hal.Device, error) {
			d, hd, cd, err := reopen()
			if err == nil {
				parts[d] = [2]*sim.Device{hd, cd}
			}
			return d, err
		},
	})
}
