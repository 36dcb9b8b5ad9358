// Package migratetest checks that a receiver meets the updraft migrate
// wire protocol (migrate/SPEC.md), the way testing/fstest checks an
// fs.FS: point [TestReceiver] at a running receiver's URL and it sends
// real signed requests and reports every rule broken.
//
//	func TestMyReceiver(t *testing.T) {
//		srv := httptest.NewServer(myReceiver)
//		defer srv.Close()
//		if err := migratetest.TestReceiver(ctx, srv.URL, migratetest.Options{Key: key, Counter: "count"}); err != nil {
//			t.Fatal(err)
//		}
//	}
//
// The suite is written against SPEC.md, not against migrate's own
// encoder: it builds its requests and reads the answers itself, using
// only migrate.SignEvent and migrate.VerifyEvent for the MAC.
package migratetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/migrate"
)

// Options configure a conformance run.
type Options struct {
	// Key is the HMAC key the receiver verifies requests with. Required.
	Key []byte
	// Counter names a function the receiver hosts that answers each run
	// with the number of times it has run so far, in decimal ("1", "2",
	// ...): the suite tells a deduplicated repeat from a second run by
	// it. Required.
	Counter string
	// Client sends the requests; default http.DefaultClient without
	// following redirects.
	Client *http.Client
	// Source is the requests' ce-source; default "migratetest".
	Source string
}

// TestReceiver runs the conformance checks against the receiver at url
// and returns every failure, joined; nil when the receiver conforms.
// Each run uses fresh ids, so it may be repeated against one receiver.
func TestReceiver(ctx context.Context, url string, opts Options) error {
	if len(opts.Key) == 0 || opts.Counter == "" {
		return errors.New("migratetest: Options.Key and Options.Counter are required")
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.Source == "" {
		opts.Source = "migratetest"
	}
	r := &run{url: url, o: opts, prefix: "mt-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"}
	var errs []error
	for _, c := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"probe", r.probe},
		{"dedup", r.dedup},
		{"percent-encoded id", r.percentEncoded},
		{"unsigned", r.unsigned},
		{"tampered", r.tampered},
		{"outside the window", r.stale},
		{"unknown function", r.unknownFunction},
		{"unsupported format", r.unsupportedFormat},
	} {
		if err := c.f(ctx); err != nil {
			errs = append(errs, fmt.Errorf("migratetest: %s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

type run struct {
	url    string
	o      Options
	prefix string
	n      int
}

func (r *run) id() string {
	r.n++
	return r.prefix + strconv.Itoa(r.n)
}

// answer is what came back: the status, the headers and the body, and
// the answer event when the headers hold one.
type answer struct {
	status int
	header http.Header
	body   []byte
	ev     *migrate.Event
}

// encode percent-encodes a header value as SPEC.md section 1 says.
func encode(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c > '~' || c == '"' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// send signs ev (unless sign is false), posts it in binary mode with
// rawID as ce-id when set, and reads the answer.
func (r *run) send(ctx context.Context, ev migrate.Event, sign bool, rawID string, edit func(*http.Request)) (*answer, error) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Source == "" {
		ev.Source = r.o.Source
	}
	if sign {
		if err := migrate.SignEvent(r.o.Key, &ev); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(ev.Data))
	if err != nil {
		return nil, err
	}
	if rawID == "" {
		rawID = encode(ev.ID)
	}
	h := req.Header
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", rawID)
	h.Set("Ce-Source", encode(ev.Source))
	h.Set("Ce-Type", encode(ev.Type))
	if ev.Subject != "" {
		h.Set("Ce-Subject", encode(ev.Subject))
	}
	h.Set("Ce-Time", ev.Time.UTC().Format(time.RFC3339Nano))
	if ev.Sig != "" {
		h.Set("Ce-Updraftsig", encode(ev.Sig))
	}
	if len(ev.Data) > 0 {
		h.Set("Content-Type", "application/octet-stream")
	}
	if edit != nil {
		edit(req)
	}
	resp, err := r.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	a := &answer{status: resp.StatusCode, header: resp.Header, body: body}
	if resp.Header.Get("Ce-Specversion") != "" {
		a.ev = &migrate.Event{ID: dec(resp.Header, "Ce-Id"), Source: dec(resp.Header, "Ce-Source"), Type: dec(resp.Header, "Ce-Type"),
			Subject: dec(resp.Header, "Ce-Subject"), Req: dec(resp.Header, "Ce-Updraftreq"), FnErr: dec(resp.Header, "Ce-Updraftfnerr"),
			Gen: dec(resp.Header, "Ce-Updraftgen"), Sig: dec(resp.Header, "Ce-Updraftsig"), Data: body}
		if t := resp.Header.Get("Ce-Time"); t != "" {
			a.ev.Time, _ = time.Parse(time.RFC3339Nano, t)
		}
	}
	return a, nil
}

// dec reads a percent-encoded header value (leaving a bad escape as is;
// the signature check then fails).
func dec(h http.Header, k string) string {
	v := h.Get(k)
	if !strings.Contains(v, "%") {
		return v
	}
	var b []byte
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			if n, err := strconv.ParseUint(v[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(n))
				i += 2
				continue
			}
		}
		b = append(b, v[i])
	}
	return string(b)
}

// result checks a 200 dev.updraft.result.v1 answer to request id, whose
// signature verifies, and returns its data.
func (r *run) result(a *answer, id string) (string, error) {
	if a.status != http.StatusOK || a.ev == nil || a.ev.Type != migrate.EventResult {
		typ := ""
		if a.ev != nil {
			typ = a.ev.Type
		}
		return "", fmt.Errorf("want HTTP 200 with a %s event, got HTTP %d, event type %q: %.200s", migrate.EventResult, a.status, typ, a.body)
	}
	if a.ev.ID != id && a.ev.Req != id {
		return "", fmt.Errorf("the answer names request %q (id) / %q (%s), want %q", a.ev.ID, a.ev.Req, migrate.ExtRequest, id)
	}
	if a.ev.Sig != "" {
		if err := migrate.VerifyEvent(r.o.Key, a.ev, time.Now(), migrate.DefaultWindow); err != nil {
			return "", fmt.Errorf("the answer's signature: %w", err)
		}
	}
	return string(a.ev.Data), nil
}

func (r *run) probe(ctx context.Context) error {
	id := r.id()
	a, err := r.send(ctx, migrate.Event{ID: id, Type: migrate.EventProbe}, true, "", nil)
	if err != nil {
		return err
	}
	_, err = r.result(a, id)
	return err
}

func (r *run) invoke(ctx context.Context, id, rawID string) (string, error) {
	a, err := r.send(ctx, migrate.Event{ID: id, Type: migrate.EventInvoke, Subject: r.o.Counter, Data: []byte("x")}, true, rawID, nil)
	if err != nil {
		return "", err
	}
	return r.result(a, id)
}

// dedup: a repeat of an id, re-signed with a new time as a lease's retry
// is, gets the first answer and does not run the function again; a new
// id runs it again.
func (r *run) dedup(ctx context.Context) error {
	a := r.id()
	first, err := r.invoke(ctx, a, "")
	if err != nil {
		return err
	}
	again, err := r.invoke(ctx, a, "")
	if err != nil {
		return err
	}
	if again != first {
		return fmt.Errorf("a repeat of id %q answered %q, the first run %q: the receiver ran it twice (SPEC.md section 5)", a, again, first)
	}
	next, err := r.invoke(ctx, r.id(), "")
	if err != nil {
		return err
	}
	if next == first {
		return fmt.Errorf("a new id answered %q like the previous one: is %q a counter (Options.Counter)?", next, r.o.Counter)
	}
	return nil
}

// percentEncoded: an id sent with a percent-encoded character is the
// same id.
func (r *run) percentEncoded(ctx context.Context) error {
	id := r.id() + "-A"
	first, err := r.invoke(ctx, id, "")
	if err != nil {
		return err
	}
	again, err := r.invoke(ctx, id, strings.TrimSuffix(id, "A")+"%41")
	if err != nil {
		return err
	}
	if again != first {
		return fmt.Errorf("id %q sent as …%%41 ran again (answer %q, first %q): header values must be percent-decoded (SPEC.md section 1)", id, again, first)
	}
	return nil
}

func (r *run) refused(a *answer, want int) error {
	if a.status != want {
		return fmt.Errorf("want HTTP %d, got %d: %.200s", want, a.status, a.body)
	}
	return nil
}

func (r *run) unsigned(ctx context.Context) error {
	a, err := r.send(ctx, migrate.Event{ID: r.id(), Type: migrate.EventInvoke, Subject: r.o.Counter}, false, "", nil)
	if err != nil {
		return err
	}
	if err := r.refused(a, http.StatusUnauthorized); err != nil {
		return err
	}
	if a.header.Get("WWW-Authenticate") == "" {
		return errors.New("a 401 without WWW-Authenticate (RFC 9110 11.6.1)")
	}
	return nil
}

func (r *run) tampered(ctx context.Context) error {
	a, err := r.send(ctx, migrate.Event{ID: r.id(), Type: migrate.EventInvoke, Subject: r.o.Counter, Data: []byte("signed")}, true, "",
		func(req *http.Request) {
			req.Body = io.NopCloser(strings.NewReader("evil!!"))
			req.ContentLength = 6
		})
	if err != nil {
		return err
	}
	return r.refused(a, http.StatusUnauthorized)
}

func (r *run) stale(ctx context.Context) error {
	a, err := r.send(ctx, migrate.Event{ID: r.id(), Type: migrate.EventInvoke, Subject: r.o.Counter, Time: time.Now().Add(-time.Hour)}, true, "", nil)
	if err != nil {
		return err
	}
	return r.refused(a, http.StatusUnauthorized)
}

func (r *run) unknownFunction(ctx context.Context) error {
	a, err := r.send(ctx, migrate.Event{ID: r.id(), Type: migrate.EventInvoke, Subject: "migratetest-no-such-function"}, true, "", nil)
	if err != nil {
		return err
	}
	return r.refused(a, http.StatusNotFound)
}

func (r *run) unsupportedFormat(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, strings.NewReader("<event/>"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/cloudevents+xml")
	resp, err := r.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		return fmt.Errorf("application/cloudevents+xml: want HTTP 415, got %d", resp.StatusCode)
	}
	return nil
}
