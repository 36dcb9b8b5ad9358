package migrate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// specVersion is the CloudEvents version this package speaks.
const specVersion = "1.0"

// Event is a CloudEvent as this package sends, signs and reads it: the
// attributes and extensions its signature covers. Binary mode is read and
// written directly from the HTTP headers (the invocation hot path);
// structured mode (JSON, from a receiver that answers that way) is
// decoded with encoding/json. Package migrate/cesdk converts events of the
// cloudevents SDK to and from it, so that the core of migrate, which every
// host of updraft links, does not link the SDK.
type Event struct {
	ID, Source, Type, Subject string
	// Time is the event's ce-time, or on a signed event made here the
	// time its signature carries (then ce-time is not sent); verify sets
	// it from the signature on events read.
	Time                 time.Time
	Req, FnErr, Gen, Sig string // extensions ExtRequest, ExtFunctionError, ExtGeneration, ExtSignature
	// ReplyTo is extension ExtReplyTo: where a receiver that answers
	// asynchronously sends the answer.
	ReplyTo     string
	ContentType string
	Data        []byte
}

// Binary-mode header names (canonical form).
const (
	hdrSpecVersion = "Ce-Specversion"
	hdrID          = "Ce-Id"
	hdrSource      = "Ce-Source"
	hdrType        = "Ce-Type"
	hdrSubject     = "Ce-Subject"
	hdrTime        = "Ce-Time"
	hdrReq         = "Ce-Updraftreq"
	hdrFnErr       = "Ce-Updraftfnerr"
	hdrGen         = "Ce-Updraftgen"
	hdrSig         = "Ce-Updraftsig"
	hdrReplyTo     = "Ce-Updraftreplyto"
	hdrContentType = "Content-Type"
	octetStream    = "application/octet-stream"
)

// Header values shared by every event; net/http never modifies them.
var (
	specVersionValue = []string{specVersion}
	octetStreamValue = []string{octetStream}
)

// writeHeaders sets e's attributes as binary-mode headers on h.
func (e *Event) writeHeaders(h http.Header) {
	vals := make([]string, 0, 10) // one allocation backs every value slice
	set := func(k, v string) {
		if v != "" {
			vals = append(vals, encodeHeaderValue(v))
			h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	h[hdrSpecVersion] = specVersionValue
	set(hdrID, e.ID)
	set(hdrSource, e.Source)
	set(hdrType, e.Type)
	set(hdrSubject, e.Subject)
	if !e.Time.IsZero() && !strings.HasPrefix(e.Sig, "t=") { // else the signature carries it
		set(hdrTime, e.Time.UTC().Format(time.RFC3339Nano))
	}
	set(hdrReq, e.Req)
	set(hdrFnErr, e.FnErr)
	set(hdrGen, e.Gen)
	set(hdrReplyTo, e.ReplyTo)
	set(hdrSig, e.Sig)
	switch {
	case len(e.Data) == 0:
	case e.ContentType == "" || e.ContentType == octetStream:
		h[hdrContentType] = octetStreamValue
	default:
		h[hdrContentType] = []string{e.ContentType}
	}
}

// needsEncoding reports whether c must be percent-encoded in a ce- header
// value (CloudEvents HTTP binding 3.1.3.2): space, '"', '%', and every
// byte outside printable ASCII.
func needsEncoding(c byte) bool { return c <= ' ' || c > '~' || c == '"' || c == '%' }

// encodeHeaderValue percent-encodes v for a ce- header (the UTF-8 bytes of
// each character that needs it, upper-case hex). The common value needs
// nothing and is returned as is, without allocating.
func encodeHeaderValue(v string) string {
	i := 0
	for i < len(v) && !needsEncoding(v[i]) {
		i++
	}
	if i == len(v) {
		return v
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, i, len(v)+8)
	copy(b, v[:i])
	for ; i < len(v); i++ {
		if c := v[i]; needsEncoding(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

// decodeHeaderValue undoes the percent-encoding of a ce- header value. A
// '%' not followed by two hex digits, or a result that is not UTF-8, is
// an error; a UTF-8 value without '%' is returned as is.
func decodeHeaderValue(name, v string) (string, error) {
	i := strings.IndexByte(v, '%')
	if i < 0 {
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("header %s: the value is not UTF-8", name)
		}
		return v, nil
	}
	b := make([]byte, 0, len(v))
	for ; i >= 0; i = strings.IndexByte(v, '%') {
		b = append(b, v[:i]...)
		if i+2 >= len(v) || unhex(v[i+1]) < 0 || unhex(v[i+2]) < 0 {
			return "", fmt.Errorf("header %s: %q is not a valid percent-encoding (want %%XX with hex digits)", name, v[i:min(len(v), i+3)])
		}
		b = append(b, byte(unhex(v[i+1])<<4|unhex(v[i+2])))
		v = v[i+3:]
	}
	b = append(b, v...)
	if !utf8.Valid(b) {
		return "", fmt.Errorf("header %s: the percent-decoded value is not UTF-8", name)
	}
	return string(b), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// errNotCloudEvent is returned by readWireEvent when the message is in
// no CloudEvents encoding at all.
var errNotCloudEvent = errors.New("not a CloudEvent (no ce-specversion header, no cloudevents content type)")

// errUnsupportedFormat is returned by readWireEvent for an event format
// (structured content type) this package does not read; a Handler answers
// it with 415.
var errUnsupportedFormat = errors.New("unsupported CloudEvents format")

// readWireEvent reads a CloudEvent from an HTTP message's headers and
// complete body into e: binary mode directly, structured mode from its
// JSON. (The caller's e may live on its stack: the hot path allocates no
// event.)
func readWireEvent(ctx context.Context, h http.Header, body []byte, e *Event) error {
	sv := header(h, hdrSpecVersion)
	if sv == "" {
		ct := header(h, hdrContentType)
		if strings.HasPrefix(ct, "application/cloudevents") {
			if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(mt) != "application/cloudevents+json" {
				return fmt.Errorf("%w: content type %q (this receiver reads binary mode and application/cloudevents+json)", errUnsupportedFormat, ct)
			}
			if err := decodeStructured(body, e); err != nil {
				return fmt.Errorf("structured CloudEvent: %w", err)
			}
			return nil
		}
		return errNotCloudEvent
	}
	if sv != specVersion {
		return fmt.Errorf("ce-specversion %q is not supported (want %s)", sv, specVersion)
	}
	*e = Event{ContentType: header(h, hdrContentType), Data: body}
	for _, f := range [...]struct {
		dst  *string
		name string
	}{{&e.ID, hdrID}, {&e.Source, hdrSource}, {&e.Type, hdrType}, {&e.Subject, hdrSubject},
		{&e.Req, hdrReq}, {&e.FnErr, hdrFnErr}, {&e.Gen, hdrGen}, {&e.Sig, hdrSig}, {&e.ReplyTo, hdrReplyTo}} {
		v, err := decodeHeaderValue(f.name, header(h, f.name))
		if err != nil {
			return err
		}
		*f.dst = v
	}
	switch {
	case e.ID == "":
		return errors.New("required header ce-id is missing or empty")
	case e.Source == "":
		return errors.New("required header ce-source is missing or empty")
	case e.Type == "":
		return errors.New("required header ce-type is missing or empty")
	}
	if t := header(h, hdrTime); t != "" {
		parsed, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return fmt.Errorf("ce-time %q is not an RFC 3339 timestamp", t)
		}
		e.Time = parsed
	}
	return nil
}

// header returns the first value of the header named by the canonical
// key k. It is h.Get without canonicalising k again: net/http stores
// the headers it parses, and Set and Add store theirs, under canonical
// keys, and every key this package looks up is a canonical constant.
func header(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}
