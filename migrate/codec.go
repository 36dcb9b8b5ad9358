package migrate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
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
	ContentType          string
	Data                 []byte
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
	vals := make([]string, 0, 9) // one allocation backs every value slice
	set := func(k, v string) {
		if v != "" {
			vals = append(vals, v)
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
	set(hdrSig, e.Sig)
	switch {
	case len(e.Data) == 0:
	case e.ContentType == "" || e.ContentType == octetStream:
		h[hdrContentType] = octetStreamValue
	default:
		set(hdrContentType, e.ContentType)
	}
}

// errNotCloudEvent is returned by readWireEvent when the message is in
// no CloudEvents encoding at all.
var errNotCloudEvent = errors.New("not a CloudEvent (no ce-specversion header, no cloudevents content type)")

// readWireEvent reads a CloudEvent from an HTTP message's headers and
// complete body into e: binary mode directly, structured mode from its
// JSON. (The caller's e may live on its stack: the hot path allocates no
// event.)
func readWireEvent(ctx context.Context, h http.Header, body []byte, e *Event) error {
	sv := header(h, hdrSpecVersion)
	if sv == "" {
		if strings.HasPrefix(header(h, hdrContentType), "application/cloudevents") {
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
	*e = Event{
		ID: header(h, hdrID), Source: header(h, hdrSource), Type: header(h, hdrType), Subject: header(h, hdrSubject),
		Req: header(h, hdrReq), FnErr: header(h, hdrFnErr), Gen: header(h, hdrGen), Sig: header(h, hdrSig),
		ContentType: header(h, hdrContentType), Data: body,
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
