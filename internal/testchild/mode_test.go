package testchild

import (
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mode
	}{
		{"burn", mode{burnMode, 1}},
		{"burn:3", mode{burnMode, 3}},
		{"hold:0", mode{holdMode, 0}},
		{"hold:134217728", mode{holdMode, 128 << 20}},
		{"holdlater:4096", mode{holdLaterMode, 4096}},
		{"exit", mode{exitMode, 0}},
		{Burn(2), mode{burnMode, 2}},
		{Hold(7), mode{holdMode, 7}},
		{HoldLater(9), mode{holdLaterMode, 9}},
		{Exit, mode{exitMode, 0}},
	} {
		got, err := parseMode(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseMode(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseModeRejects(t *testing.T) {
	for in, says := range map[string]string{
		"":                           "unknown",
		"spin:1":                     "unknown",
		"hold":                       "needs a byte count",
		"holdlater":                  "needs a byte count",
		"hold:x":                     "count",
		"hold:-1":                    "out of range",
		"burn:0":                     "out of range",
		"burn:":                      "count",
		"exit:1":                     "no count",
		"hold:1:2":                   "count",
		"burn:999999999999999999999": "count",
	} {
		_, err := parseMode(in)
		if err == nil {
			t.Errorf("parseMode(%q) accepted it", in)
			continue
		}
		if !strings.HasPrefix(err.Error(), "testchild: mode ") || !strings.Contains(err.Error(), says) {
			t.Errorf("parseMode(%q) = %q, want a testchild error naming the mode and saying %q", in, err, says)
		}
	}
}

func TestFirstLine(t *testing.T) {
	for in, want := range map[string]string{Burn(1): "ready", Hold(1): "ready", HoldLater(1): "started"} {
		m, err := parseMode(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.firstLine(); got != want {
			t.Errorf("mode %q says %q first, want %q", in, got, want)
		}
	}
}

// FuzzParseMode: every mode that parses formats back to a string that
// parses to the same mode, and every error names the package and the mode.
func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"burn", "burn:2", "hold:0", "holdlater:4096", "exit", "exit:", "hold:-1", "", ":", "burn:+1", "hold:0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMode(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "testchild: mode ") {
				t.Fatalf("parseMode(%q) error %q lacks the prefix", s, err)
			}
			return
		}
		again, err := parseMode(m.String())
		if err != nil || again != m {
			t.Fatalf("parseMode(%q) = %+v, but its String %q parses to %+v, %v", s, m, m.String(), again, err)
		}
	})
}
