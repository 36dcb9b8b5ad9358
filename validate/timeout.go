package validate

import (
	"context"
	"time"
)

// Timeouter is an optional interface for checks that need a per-attempt
// timeout other than Options.Timeout (a comparison that samples traffic
// for 30 s beside probes that answer in milliseconds). A positive Timeout
// replaces Options.Timeout for that check; zero or negative keeps it.
type Timeouter interface {
	Timeout() time.Duration
}

// WithTimeout returns c with its own per-attempt timeout d, as a
// [Timeouter]. The wrapper forwards RecordBaseline and ShouldRetry to c
// when c implements them (recording nothing, and allowing retries, when it
// does not).
func WithTimeout(c Check, d time.Duration) Check {
	return &timeoutCheck{Check: c, timeout: d}
}

type timeoutCheck struct {
	Check
	timeout time.Duration
}

var (
	_ Timeouter        = (*timeoutCheck)(nil)
	_ BaselineRecorder = (*timeoutCheck)(nil)
	_ Retrier          = (*timeoutCheck)(nil)
)

func (t *timeoutCheck) Timeout() time.Duration { return t.timeout }

func (t *timeoutCheck) RecordBaseline(ctx context.Context) error {
	if r, ok := t.Check.(BaselineRecorder); ok {
		return r.RecordBaseline(ctx)
	}
	return nil
}

func (t *timeoutCheck) ShouldRetry(r Result) bool {
	if rt, ok := t.Check.(Retrier); ok {
		return rt.ShouldRetry(r)
	}
	return true
}
