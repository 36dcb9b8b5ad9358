package migrate

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// CloudEvents types spoken between a Lease's targets and a [Handler].
// Requests carry the function name as the event's subject and the
// idempotency key as its id; a Handler's answers carry the request's id as
// their own.
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
	// ExtRequest, on an answer, may hold the id of the request it answers.
	// A Handler's answers carry the request's id as their own id instead
	// (their source differs, so the pair stays unique), and the signature
	// binds the two.
	ExtRequest = "updraftreq"
	// ExtFunctionError, on an EventError answer, is "true" when the error
	// is the function's own (its effect counts as applied).
	ExtFunctionError = "updraftfnerr"
	// ExtGeneration, on a request for a stateful function, names the state
	// the lease last installed (with EventPutState, which sets it). A
	// handler whose state is of another generation — it restarted, or the
	// state was replaced — refuses with 409 Conflict instead of running on
	// the wrong state.
	ExtGeneration = "updraftgen"
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

// MinKeyBytes is the shortest HMAC key the package accepts.
const MinKeyBytes = 16

func checkKey(key []byte) error {
	if len(key) < MinKeyBytes {
		return fmt.Errorf("migrate: HMAC key is %d bytes; use at least %d random bytes", len(key), MinKeyBytes)
	}
	return nil
}

// Sign sets e's signature extension: an HMAC-SHA256 with key over the
// event's type, id, source, subject, time, answer extensions and data. e
// must have its time set; a [Handler] refuses events whose time is outside
// its window. Use Sign to call a Handler from a client of your own (the
// cloudevents SDK's client, for instance).
func Sign(key []byte, e *event.Event) error {
	if len(key) == 0 {
		return fmt.Errorf("migrate: sign event %q: empty key", e.ID())
	}
	if e.Time().IsZero() {
		return fmt.Errorf("migrate: sign event %q: event has no time", e.ID())
	}
	w := fromSDK(e)
	e.SetExtension(ExtSignature, newSigner(key).sign(w))
	return nil
}

// Verify checks e's signature with key and that its time is within window
// of now. Errors wrap [ErrUnauthorized] and say which check failed.
func Verify(key []byte, e *event.Event, now time.Time, window time.Duration) error {
	return newSigner(key).verify(fromSDK(e), now, window)
}

// signer computes and checks signatures with one key. It is safe for
// concurrent use; MACs are pooled because the hot path signs and checks
// two events per invocation.
type signer struct {
	key  []byte
	macs sync.Pool // of *macBuf
}

type macBuf struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte // Sum's destination, here so it does not escape per call
}

func newSigner(key []byte) *signer {
	s := &signer{key: bytes.Clone(key)}
	s.macs.New = func() any { return &macBuf{mac: hmac.New(sha256.New, s.key), buf: make([]byte, 0, 256)} }
	return s
}

// sigLen is the length of a signature: "v1=" and 43 base64url digits.
const sigLen = 3 + 43

// sign returns the signature of e: "v1=" + base64url(HMAC-SHA256(key,
// canonical form)), the canonical form being the attributes below, each
// followed by a newline, then the data's length and the data.
func (s *signer) sign(e *wireEvent) string {
	var sig [sigLen]byte
	s.signInto(&sig, e)
	return string(sig[:])
}

// signInto writes e's signature into sig, without allocating: the MAC and
// its scratch buffer come from the pool.
func (s *signer) signInto(sig *[sigLen]byte, e *wireEvent) {
	mb := s.macs.Get().(*macBuf)
	b := append(mb.buf[:0], "updraft-hmac-v1\n"...)
	for _, f := range [...]string{e.Type, e.ID, e.Source, e.Subject} {
		b = append(b, f...)
		b = append(b, '\n')
	}
	if e.timeText != "" {
		b = append(b, e.timeText...)
	} else {
		b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	}
	b = append(b, '\n')
	for _, f := range [...]string{e.Req, e.FnErr, e.Gen} {
		b = append(b, f...)
		b = append(b, '\n')
	}
	b = strconv.AppendInt(b, int64(len(e.Data)), 10)
	b = append(b, '\n')
	mb.buf = b
	mb.mac.Reset()
	mb.mac.Write(b)
	mb.mac.Write(e.Data)
	copy(sig[:], "v1=")
	base64.RawURLEncoding.Encode(sig[3:], mb.mac.Sum(mb.sum[:0]))
	s.macs.Put(mb)
}

func (s *signer) verify(e *wireEvent, now time.Time, window time.Duration) error {
	if e.Sig == "" {
		return fmt.Errorf("%w: event %q (%s) is unsigned", ErrUnauthorized, e.ID, e.Type)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("%w: event %q has no time", ErrUnauthorized, e.ID)
	}
	var want [sigLen]byte
	s.signInto(&want, e)
	if !equalSig(e.Sig, &want) {
		return fmt.Errorf("%w: event %q (%s): signature does not match (tampered, or signed with another key)", ErrUnauthorized, e.ID, e.Type)
	}
	if skew := now.Sub(e.Time); skew > window || skew < -window {
		return fmt.Errorf("%w: event %q time %s is %v from this clock (%s); the window is ±%v: replayed, or clocks skewed",
			ErrUnauthorized, e.ID, e.Time.UTC().Format(time.RFC3339Nano), skew.Round(time.Millisecond), now.UTC().Format(time.RFC3339), window)
	}
	return nil
}

// equalSig compares a received signature with the expected one in
// constant time (the length is not secret: every signature has sigLen
// bytes). It is hmac.Equal without converting got to a []byte.
func equalSig(got string, want *[sigLen]byte) bool {
	if len(got) != sigLen {
		return false
	}
	var v byte
	for i := range want {
		v |= got[i] ^ want[i]
	}
	return v == 0
}
