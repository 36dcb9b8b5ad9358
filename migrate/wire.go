package migrate

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// CloudEvents types spoken between a Lease's targets and a [Handler].
// Requests carry the function name as the event's subject and the
// idempotency key as its id; answers carry the request's id in the
// "updraftreq" extension.
const (
	EventInvoke   = "dev.updraft.invoke.v1"    // data: payload
	EventPutState = "dev.updraft.state.put.v1" // data: the state to import
	EventGetState = "dev.updraft.state.get.v1" // no data; answer data: exported state
	EventProbe    = "dev.updraft.probe.v1"     // health check; no data
	EventResult   = "dev.updraft.result.v1"    // successful answer
	EventError    = "dev.updraft.error.v1"     // refusal or function error; data: message
)

// Extension attributes.
const (
	// ExtSignature holds the HMAC-SHA256 signature, "v1=" + base64url.
	ExtSignature = "updraftsig"
	// ExtRequest, on an answer, holds the id of the request it answers.
	ExtRequest = "updraftreq"
	// ExtFunctionError, on an EventError answer, is "true" when the error
	// is the function's own (its effect counts as applied).
	ExtFunctionError = "updraftfnerr"
)

// EventType returns the CloudEvents type of a request kind.
func EventType(k Kind) string {
	switch k {
	case KindInvoke:
		return EventInvoke
	case KindPutState:
		return EventPutState
	case KindGetState:
		return EventGetState
	default:
		return ""
	}
}

func kindOf(eventType string) (Kind, bool) {
	switch eventType {
	case EventInvoke:
		return KindInvoke, true
	case EventPutState:
		return KindPutState, true
	case EventGetState:
		return KindGetState, true
	default:
		return 0, false
	}
}

// Sign sets e's signature extension: an HMAC-SHA256 with key over the
// event's type, id, source, subject, time, request extension and a hash of
// its data. e must have its time set; a [Handler] refuses events whose time
// is outside its window. Use Sign to call a Handler from a client of your
// own (the cloudevents SDK's client, for instance).
func Sign(key []byte, e *event.Event) error {
	if len(key) == 0 {
		return fmt.Errorf("migrate: sign event %q: empty key", e.ID())
	}
	if e.Time().IsZero() {
		return fmt.Errorf("migrate: sign event %q: event has no time", e.ID())
	}
	e.SetExtension(ExtSignature, signature(key, e))
	return nil
}

// Verify checks e's signature with key and that its time is within window
// of now. Errors wrap [ErrUnauthorized] and say which check failed.
func Verify(key []byte, e *event.Event, now time.Time, window time.Duration) error {
	got, _ := e.Extensions()[ExtSignature].(string)
	if got == "" {
		return fmt.Errorf("%w: event %q (%s) is unsigned", ErrUnauthorized, e.ID(), e.Type())
	}
	if !hmac.Equal([]byte(got), []byte(signature(key, e))) {
		return fmt.Errorf("%w: event %q (%s): signature does not match (tampered, or signed with another key)", ErrUnauthorized, e.ID(), e.Type())
	}
	t := e.Time()
	if t.IsZero() {
		return fmt.Errorf("%w: event %q has no time", ErrUnauthorized, e.ID())
	}
	if skew := now.Sub(t); skew > window || skew < -window {
		return fmt.Errorf("%w: event %q time %s is %v from this clock (%s); the window is ±%v: replayed, or clocks skewed",
			ErrUnauthorized, e.ID(), t.UTC().Format(time.RFC3339Nano), skew.Round(time.Millisecond), now.UTC().Format(time.RFC3339), window)
	}
	return nil
}

func signature(key []byte, e *event.Event) string {
	sum := sha256.Sum256(e.Data())
	req, _ := e.Extensions()[ExtRequest].(string)
	fnerr, _ := e.Extensions()[ExtFunctionError].(string)
	var b strings.Builder
	for _, s := range []string{"updraft-hmac-v1", e.Type(), e.ID(), e.Source(), e.Subject(),
		e.Time().UTC().Format(time.RFC3339Nano), req, fnerr, hex.EncodeToString(sum[:])} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(b.String()))
	return "v1=" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
