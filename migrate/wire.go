package migrate

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
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
	// ExtSignature holds the HMAC-SHA256 signature, in one of two forms
	// (see [Sign]): "t=" + the event's time in Unix nanoseconds + ",v1=" +
	// base64url(MAC), which this package's leases and Handlers send, the
	// time travelling in the signature instead of in ce-time; or "v1=" +
	// base64url(MAC), made by Sign for events that carry their time in
	// ce-time. [Verify] and Handlers accept both.
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
	// ExtReplyTo, on an invocation sent by a target with
	// CloudEventsOptions.ReplyTo, is the URL to which a receiver that
	// acknowledges at once (202) posts the answer later: an EventResult
	// (or a type the function accepts) or EventError whose ExtRequest is
	// the invocation's id. When present it is signed (see SPEC.md).
	ExtReplyTo = "updraftreplyto"
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

// SignEvent sets e.Sig: an HMAC-SHA256 with key over the event's type,
// id, source, subject, time, answer extensions and data, in the form
// "v1=" + base64url(MAC), which leaves the time to e's ce-time. e must
// have its time set; a [Handler] refuses events whose time is outside its
// window. Use it to call a Handler from a client of your own; package
// migrate/cesdk does it for events of the cloudevents SDK.
func SignEvent(key []byte, e *Event) error {
	if len(key) == 0 {
		return fmt.Errorf("migrate: sign event %q: empty key", e.ID)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("migrate: sign event %q: event has no time", e.ID)
	}
	var sig [sigMaxLen]byte
	e.Sig = string(newSigner(key).signInto(&sig, e, false))
	return nil
}

// VerifyEvent checks e's signature with key, in either form (see
// [ExtSignature]), and that its time is within window of now. With the
// time in the signature, a ce-time the event carries as well must be the
// same instant. Errors wrap [ErrUnauthorized] and say which check failed.
func VerifyEvent(key []byte, e *Event, now time.Time, window time.Duration) error {
	c := *e
	return newSigner(key).verify(&c, now, window)
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

// Lengths in a signature: the base64url MAC, and the longest signature,
// "t=" + an int64 in decimal + ",v1=" + MAC.
const (
	macTextLen = 43
	sigMaxLen  = len("t=-9223372036854775808,v1=") + macTextLen
)

// sign returns the signature of e in the form with the time, "t=" + Unix
// nanoseconds + ",v1=" + base64url(MAC); for a time Unix nanoseconds
// cannot hold (zero, or beyond the years 1678 to 2262) it returns the
// "v1=" form, and e's time then travels in ce-time.
func (s *signer) sign(e *Event) string {
	var sig [sigMaxLen]byte
	return string(s.signInto(&sig, e, time.Unix(0, e.Time.UnixNano()).Equal(e.Time)))
}

// signInto writes e's signature into sig and returns it, without
// allocating: withTime chooses the form with the time ("t=...,v1=...")
// over the one that leaves it to ce-time ("v1=...").
func (s *signer) signInto(sig *[sigMaxLen]byte, e *Event, withTime bool) []byte {
	var tbuf [len(time.RFC3339Nano) + 8]byte
	var timeLine []byte
	out := sig[:0]
	if withTime {
		timeLine = strconv.AppendInt(tbuf[:0], e.Time.UnixNano(), 10)
		out = append(append(append(out, "t="...), timeLine...), ',')
	} else {
		timeLine = e.Time.UTC().AppendFormat(tbuf[:0], time.RFC3339Nano)
	}
	out = append(out, "v1="...)
	var mac [macTextLen]byte
	s.macInto(&mac, e, timeLine)
	return append(out, mac[:]...)
}

// macInto writes base64url(HMAC-SHA256(key, canonical form of e)) into
// mac. The canonical form is the attributes below, each followed by a
// newline, then the data's length and the data; timeLine is the time as
// the signature's form carries it (decimal Unix nanoseconds, or ce-time's
// RFC 3339 in UTC), so that neither form's MAC can pass for the other's.
func (s *signer) macInto(mac *[macTextLen]byte, e *Event, timeLine []byte) {
	mb := s.macs.Get().(*macBuf)
	b := append(mb.buf[:0], "updraft-hmac-v1\n"...)
	for _, f := range [...]string{e.Type, e.ID, e.Source, e.Subject} {
		b = append(b, f...)
		b = append(b, '\n')
	}
	b = append(b, timeLine...)
	b = append(b, '\n')
	for _, f := range [...]string{e.Req, e.FnErr, e.Gen} {
		b = append(b, f...)
		b = append(b, '\n')
	}
	if e.ReplyTo != "" { // a line only when present: events without it sign as before
		b = append(b, "replyto:"...)
		b = append(b, e.ReplyTo...)
		b = append(b, '\n')
	}
	b = strconv.AppendInt(b, int64(len(e.Data)), 10)
	b = append(b, '\n')
	mb.buf = b
	mb.mac.Reset()
	mb.mac.Write(b)
	mb.mac.Write(e.Data)
	base64.RawURLEncoding.Encode(mac[:], mb.mac.Sum(mb.sum[:0]))
	s.macs.Put(mb)
}

// verify checks e's signature, in either form, and its time against
// now's window. With the time in the signature, it sets e.Time to it
// (and refuses a ce-time that differs).
func (s *signer) verify(e *Event, now time.Time, window time.Duration) error {
	if e.Sig == "" {
		return fmt.Errorf("%w: event %q (%s) is unsigned", ErrUnauthorized, e.ID, e.Type)
	}
	var tbuf [len(time.RFC3339Nano) + 8]byte
	var timeLine []byte
	var got string
	if rest, ok := strings.CutPrefix(e.Sig, "t="); ok {
		ts, m, ok := strings.Cut(rest, ",v1=")
		n, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("%w: event %q (%s): signature is malformed (want t=<unix nanoseconds>,v1=<mac>)", ErrUnauthorized, e.ID, e.Type)
		}
		at := time.Unix(0, n)
		if !e.Time.IsZero() && !e.Time.Equal(at) {
			return fmt.Errorf("%w: event %q (%s): ce-time %s differs from the signed time %s", ErrUnauthorized, e.ID, e.Type,
				e.Time.UTC().Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano))
		}
		e.Time, got = at, m
		timeLine = append(tbuf[:0], ts...)
	} else if m, ok := strings.CutPrefix(e.Sig, "v1="); ok {
		if e.Time.IsZero() {
			return fmt.Errorf("%w: event %q has no time (neither ce-time nor a signed one)", ErrUnauthorized, e.ID)
		}
		got = m
		timeLine = e.Time.UTC().AppendFormat(tbuf[:0], time.RFC3339Nano)
	} else {
		return fmt.Errorf("%w: event %q (%s): signature is in no known form (want t=<unix nanoseconds>,v1=<mac> or v1=<mac>)", ErrUnauthorized, e.ID, e.Type)
	}
	var want [macTextLen]byte
	s.macInto(&want, e, timeLine)
	if !equalMAC(got, &want) {
		return fmt.Errorf("%w: event %q (%s): signature does not match (tampered, or signed with another key)", ErrUnauthorized, e.ID, e.Type)
	}
	if skew := now.Sub(e.Time); skew > window || skew < -window {
		return fmt.Errorf("%w: event %q time %s is %v from this clock (%s); the window is ±%v: replayed, or clocks skewed",
			ErrUnauthorized, e.ID, e.Time.UTC().Format(time.RFC3339Nano), skew.Round(time.Millisecond), now.UTC().Format(time.RFC3339), window)
	}
	return nil
}

// equalMAC compares a received MAC with the expected one in constant
// time (the length is not secret: every MAC has macTextLen digits). It is
// hmac.Equal without converting got to a []byte.
func equalMAC(got string, want *[macTextLen]byte) bool {
	if len(got) != macTextLen {
		return false
	}
	var v byte
	for i := range want {
		v |= got[i] ^ want[i]
	}
	return v == 0
}
