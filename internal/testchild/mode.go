package testchild

import (
	"fmt"
	"strconv"
	"strings"
)

// Mode names. A mode string is one of these, optionally followed by ":"
// and a count (threads for burn, bytes for hold and holdlater).
const (
	burnMode      = "burn"
	holdMode      = "hold"
	holdLaterMode = "holdlater"
	exitMode      = "exit"
)

// Exit is the mode of a child that exits at once with status 0.
const Exit = exitMode

// Burn returns the mode of a child that spins threads threads, each on its
// own OS thread, until it exits.
func Burn(threads int) string { return mode{burnMode, threads}.String() }

// Hold returns the mode of a child that holds bytes bytes of resident
// memory (outside the Go heap on Linux) until it exits.
func Hold(bytes int) string { return mode{holdMode, bytes}.String() }

// HoldLater returns the mode of a child that says "started", waits for
// [Child.Proceed], and then holds bytes bytes as [Hold] does.
func HoldLater(bytes int) string { return mode{holdLaterMode, bytes}.String() }

// mode is a parsed mode string.
type mode struct {
	kind string
	n    int // threads for burn, bytes for hold and holdlater, 0 for exit
}

func (m mode) String() string {
	if m.kind == exitMode {
		return exitMode
	}
	return m.kind + ":" + strconv.Itoa(m.n)
}

// firstLine is what a child in mode m says when Start may return.
func (m mode) firstLine() string {
	if m.kind == holdLaterMode {
		return "started"
	}
	return "ready"
}

// parseMode parses a mode string as documented in the package comment.
func parseMode(s string) (mode, error) {
	kind, count, hasCount := strings.Cut(s, ":")
	switch kind {
	case exitMode:
		if hasCount {
			return mode{}, fmt.Errorf("testchild: mode %q: exit takes no count", s)
		}
		return mode{kind: exitMode}, nil
	case burnMode:
		if !hasCount {
			return mode{kind: burnMode, n: 1}, nil
		}
	case holdMode, holdLaterMode:
		if !hasCount {
			return mode{}, fmt.Errorf("testchild: mode %q: %s needs a byte count, as in %s:1048576", s, kind, kind)
		}
	default:
		return mode{}, fmt.Errorf("testchild: mode %q: unknown; want burn[:threads], hold:bytes, holdlater:bytes or exit", s)
	}
	n, err := strconv.Atoi(count)
	if err != nil {
		return mode{}, fmt.Errorf("testchild: mode %q: count: %w", s, err)
	}
	if n < 0 || (kind == burnMode && n == 0) {
		return mode{}, fmt.Errorf("testchild: mode %q: count %d out of range (burn needs at least 1 thread, hold at least 0 bytes)", s, n)
	}
	return mode{kind: kind, n: n}, nil
}
