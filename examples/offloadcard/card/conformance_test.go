package card_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/updraft-dev/updraft/examples/offloadcard/card"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/haltest"
)

// TestConformance runs the hal driver conformance suite on the card, its
// configuration in a state file so that a reopened card (a new process)
// undoes from the journaled record.
func TestConformance(t *testing.T) {
	var config string // of the card open returned last
	haltest.TestDevice(t, func(t testing.TB) hal.Device {
		config = fmt.Sprintf(`{"queues": 16, "flows": 4096, "state": %q}`, filepath.Join(t.TempDir(), "card.json"))
		dev, err := hal.Open("offloadcard", config)
		if err != nil {
			t.Fatal(err)
		}
		return dev
	}, haltest.Options{
		State:  func(d hal.Device) (any, error) { return snap(d.(*card.Card)), nil },
		Reopen: func(testing.TB, hal.Device) (hal.Device, error) { return hal.Open("offloadcard", config) },
	})
}
