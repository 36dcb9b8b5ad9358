package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRun runs the example end to end and checks the story it tells: a
// plan, the card configured by it, a critical burst accepted, a
// non-critical one refused by the card, and a clean card after undo.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"card capacity: nic.flow=4096 nic.queue=16",
		"firewall   nic.flow=1100 nic.queue=5",
		"does not fit: dpi",
		"queues: firewall firewall firewall firewall firewall mirror nat",
		"firewall installs 1300 flows (reserved 1100): ok",
		"telemetry installs 801 flows (limit 800): refused by the card",
		"after undo:\n  queues: - - - - - - - - - - - - - - - -\n  flow quotas: none",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
