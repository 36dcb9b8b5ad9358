package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// CloudEventsOptions configure a [CloudEventsTarget]. Zero fields take the
// documented defaults.
type CloudEventsOptions struct {
	Region         string     // required: matched against Spec.Regions
	Provider       string     // default "cloudevents"
	Capacity       hal.Vector // empty = unbounded
	CostPerMillion float64

	// Key signs requests (see [SignEvent]). When empty, the Mover's
	// Options.Key is used. New fails if neither is set, unless the target
	// authenticates with mutual TLS instead: an https endpoint and a Client
	// whose *http.Transport presents a client certificate.
	Key []byte
	// RequireSignedAnswers refuses answers without a valid signature. By
	// default an answer's signature is checked when present, so plain
	// CloudEvents receivers that do not sign (such as those built with the
	// cloudevents SDK, tested) work.
	RequireSignedAnswers bool
	// AcknowledgeOnly declares that the receiver acknowledges invocations
	// (HTTP 202, or 2xx without an event) and never answers them, as a
	// Functions Framework CloudEvent function or an event sink does. Only
	// functions declared with Spec.NoAnswer are placed on it.
	AcknowledgeOnly bool
	// ReplyTo is the absolute http(s) URL at which the host serves this
	// target's [CloudEventsTarget.ReplyHandler]. When set, invocations
	// carry it (extension ExtReplyTo), and an invocation acknowledged
	// without an answer (202) waits, up to the call's deadline, for the
	// answer to arrive there: a signed CloudEvent whose ExtRequest is the
	// invocation's id. An AcknowledgeOnly target with ReplyTo can then
	// host functions that need an answer.
	ReplyTo string
	// FollowRedirects follows an endpoint's 3xx answers. By default they
	// are not followed (the CloudEvents HTTP webhook spec forbids it) and
	// the call fails with ErrRejected naming the Location.
	FollowRedirects bool
	// MaxInFlight bounds the invocations of one function on their way to
	// this target at once, below the Mover's Options.MaxInFlight; 0 sets
	// no bound of its own. A Functions Framework for Go target needs 1
	// (SPEC.md section 7). See [InFlightLimiter].
	MaxInFlight int
	// Source is the CloudEvents source of requests; default "updraft/lease".
	Source string
	// Client sends the requests; default a client of its own with
	// keep-alive connections. Configure its TLS for mutual TLS.
	Client *http.Client
	// MaxAnswerBytes bounds an answer's body; default DefaultMaxStateBytes.
	MaxAnswerBytes int64
	// Window bounds how far an answer's time may be from this clock when
	// answers are signed; default DefaultWindow.
	Window time.Duration
	// Clock stamps requests; default the Mover's Options.Clock, else
	// time.Now.
	Clock Clock
}

// CloudEventsTarget invokes functions through a receiver of CloudEvents
// 1.0 over HTTP in binary mode: a [Handler] in another region, or another
// receiver within the limits Migrate enforces (the runtimes tested are
// listed in SPEC.md section 7; Knative, Cloud Run, OpenFaaS and Azure
// Functions are not run by the tests). A request is an event of
// type [EventInvoke], [EventPutState] or [EventGetState] whose subject is
// the function and whose id is the idempotency key; the answer is an event
// of type [EventResult] or [EventError]. Status codes are checked
// explicitly: a 4xx or 5xx is an error even when it carries no event.
// Signed requests carry their time in the signature extension (see
// [ExtSignature]), not in ce-time, and requests send no User-Agent.
//
// A CloudEventsTarget is safe for concurrent use.
type CloudEventsTarget struct {
	info   TargetInfo
	url    string
	u      *url.URL // parsed url; never modified
	opts   CloudEventsOptions
	signer *signer // nil until a key is known
	// rt is the transport of the target's own client (opts.Client was
	// nil), which send uses directly; nil with a caller's client.
	rt http.RoundTripper

	waiters sync.Map // request id → chan Event: invocations waiting for an answer at ReplyTo

	probeMu     sync.Mutex
	probeType   string // type of the last successful probe's answer; guarded by probeMu
	probeStatus int    // its HTTP status; guarded by probeMu
}

var _ Target = (*CloudEventsTarget)(nil)

// NewCloudEventsTarget returns a target named name that posts to endpoint.
func NewCloudEventsTarget(name, endpoint string, opts CloudEventsOptions) (*CloudEventsTarget, error) {
	if name == "" {
		return nil, errors.New("migrate: NewCloudEventsTarget: empty name")
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("migrate: target %s: endpoint %q is not an http(s) URL", name, endpoint)
	}
	if opts.Region == "" {
		return nil, fmt.Errorf("migrate: target %s: CloudEventsOptions.Region is empty", name)
	}
	if err := opts.Capacity.Validate(); err != nil {
		return nil, fmt.Errorf("migrate: target %s capacity: %w", name, err)
	}
	if err := checkKey(opts.Key); len(opts.Key) > 0 && err != nil {
		return nil, fmt.Errorf("migrate: target %s: %w", name, err)
	}
	if opts.MaxInFlight < 0 {
		return nil, fmt.Errorf("migrate: target %s: CloudEventsOptions.MaxInFlight is %d, want 0 (no bound of its own) or more", name, opts.MaxInFlight)
	}
	if opts.ReplyTo != "" {
		if ru, err := url.Parse(opts.ReplyTo); err != nil || (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "" {
			return nil, fmt.Errorf("migrate: target %s: CloudEventsOptions.ReplyTo %q is not an absolute http(s) URL", name, opts.ReplyTo)
		}
	}
	if opts.Provider == "" {
		opts.Provider = "cloudevents"
	}
	if opts.Source == "" {
		opts.Source = "updraft/lease"
	}
	var rt http.RoundTripper
	if opts.Client != nil && !opts.FollowRedirects {
		c := *opts.Client // the caller's client is not modified
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		opts.Client = &c
	}
	if opts.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		tr.DisableCompression = true // answers are opaque payloads; gzip negotiation only costs
		opts.Client = &http.Client{Transport: tr}
		rt = tr
	}
	positiveOr(&opts.MaxAnswerBytes, DefaultMaxStateBytes)
	positiveOr(&opts.Window, DefaultWindow)
	t := &CloudEventsTarget{
		info: TargetInfo{Name: name, Region: opts.Region, Provider: opts.Provider,
			Capacity: opts.Capacity.Clone(), CostPerMillion: opts.CostPerMillion},
		url:  endpoint,
		u:    u,
		opts: opts,
		rt:   rt,
	}
	if len(opts.Key) > 0 {
		t.signer = newSigner(opts.Key)
	}
	return t, nil
}

func (t *CloudEventsTarget) now() time.Time {
	if t.opts.Clock != nil {
		return t.opts.Clock()
	}
	return time.Now()
}

// Info implements [Target].
func (t *CloudEventsTarget) Info() TargetInfo { return t.info }

// URL returns the endpoint requests are posted to.
func (t *CloudEventsTarget) URL() string { return t.url }

// Probe implements [Target]: it posts an [EventProbe] and expects a 2xx.
// It records how the probe was answered (see [ProbeAnswerer]): a
// [Handler] answers with an [EventResult]; a plain receiver with an event
// of its own type, or with a bare acknowledgement.
func (t *CloudEventsTarget) Probe(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	ev := t.newEvent(EventProbe, "", "probe-"+strconv.FormatInt(start.UnixNano(), 36), "", nil)
	var answer Event
	var after time.Duration
	status, ans, err := t.post(ctx, &ev, &answer, &after)
	if err != nil {
		return 0, err
	}
	if status/100 != 2 {
		return 0, fmt.Errorf("%w: target %s: probe answered HTTP %d%s", ErrUnreachable, t.info.Name, status, errorText(ans))
	}
	typ := ""
	if ans != nil {
		typ = ans.Type
	}
	t.probeMu.Lock()
	t.probeType, t.probeStatus = typ, status
	t.probeMu.Unlock()
	return time.Since(start), nil
}

// ReplyHandler returns the handler to serve at CloudEventsOptions.ReplyTo:
// it takes the answers that receivers post there (binary or structured
// CloudEvents; signed, when the target has a key) and hands each to the
// invocation waiting for it, matched by its ExtRequest (or, without one,
// its id). It answers 202 when an invocation took the answer, 404 when
// none waits for it (unknown, or past its deadline), 401 when the
// signature does not verify.
func (t *CloudEventsTarget) ReplyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "migrate: POST a CloudEvent", http.StatusMethodNotAllowed)
			return
		}
		body, err := readBody(r.Body, r.ContentLength, t.opts.MaxAnswerBytes)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ev Event
		if err := readWireEvent(r.Context(), r.Header, body, &ev); err != nil {
			http.Error(w, "migrate: reply is not a CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		if t.signer != nil {
			if err := t.signer.verify(&ev, t.now(), t.opts.Window); err != nil {
				w.Header()["Www-Authenticate"] = []string{WWWAuthenticate}
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
		}
		id := ev.Req
		if id == "" {
			id = ev.ID
		}
		ch, ok := t.waiters.Load(id)
		if !ok {
			http.Error(w, fmt.Sprintf("migrate: no invocation %q waits for an answer here", id), http.StatusNotFound)
			return
		}
		select {
		case ch.(chan Event) <- ev:
			w.WriteHeader(http.StatusAccepted)
		default:
			http.Error(w, fmt.Sprintf("migrate: invocation %q already has its answer", id), http.StatusConflict)
		}
	})
}

// MaxInFlight implements [InFlightLimiter]: CloudEventsOptions.MaxInFlight.
func (t *CloudEventsTarget) MaxInFlight() int { return t.opts.MaxInFlight }

// ProbeAnswer implements [ProbeAnswerer].
func (t *CloudEventsTarget) ProbeAnswer() ProbeAnswer {
	t.probeMu.Lock()
	defer t.probeMu.Unlock()
	return ProbeAnswer{AcknowledgeOnly: t.opts.AcknowledgeOnly, RepliesLater: t.opts.ReplyTo != "", Type: t.probeType, Status: t.probeStatus}
}

// Call implements [Target]. An invocation the target accepted — a 2xx
// with no body, or with a CloudEvent — is never reported as a target
// failure: when the answer is missing or of a type the request does not
// accept, the error wraps [ErrNoAnswer] and the invocation counts as
// applied; with req.NoAnswer a bare acknowledgement completes it. A 2xx
// whose body is not a CloudEvent, or whose answer's signature does not
// verify, is a refusal (ErrRejected): such a target is not a receiver.
func (t *CloudEventsTarget) Call(ctx context.Context, req Request) ([]byte, error) {
	typ := EventType(req.Kind)
	if typ == "" {
		return nil, fmt.Errorf("migrate: target %s: request kind %d is unknown", t.info.Name, req.Kind)
	}
	replyTo := ""
	var replies chan Event
	if t.opts.ReplyTo != "" && req.Kind == KindInvoke && !req.NoAnswer {
		replyTo, replies = t.opts.ReplyTo, make(chan Event, 1)
		t.waiters.Store(req.ID, replies)
		defer t.waiters.Delete(req.ID)
	}
	ev := t.newEventReply(typ, req.Function, req.ID, req.Generation, replyTo, req.Payload)
	var answer Event
	var after time.Duration
	status, ans, err := t.post(ctx, &ev, &answer, &after)
	if err != nil {
		return nil, fmt.Errorf("%w (%s of %q, id %s)", err, req.Kind, req.Function, req.ID)
	}
	if replies != nil && status/100 == 2 && ans == nil {
		select {
		case answer = <-replies: // the answer came back to ReplyTo
			status, ans = http.StatusOK, &answer
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: target %s: %s of %q (id %s) was accepted (HTTP %d) but no answer reached %s before the call's deadline (it counts as applied, and is not run again): %v",
				ErrNoAnswer, t.info.Name, req.Kind, req.Function, req.ID, status, t.opts.ReplyTo, ctx.Err())
		}
	}
	res, err := t.interpret(req, status, ans)
	if after > 0 && errors.Is(err, ErrUnreachable) {
		return nil, &RetryAfterError{After: after, Err: err}
	}
	var fe *FunctionError
	switch {
	case err == nil || req.Kind != KindInvoke || status/100 != 2 || errors.As(err, &fe):
		return res, err
	case req.NoAnswer && ans == nil:
		return nil, nil // accepted; the caller needs no answer
	default:
		// Accepted (2xx, a CloudEvents answer or none) but not answered
		// as the function needs: not a target failure, or the lease
		// would run it again elsewhere.
		return nil, fmt.Errorf("%w (it counts as applied, and is not run again): %v", ErrNoAnswer, err) // not %w: no target failure
	}
}

// answers reports whether ans may be the answer to request id: a signed
// answer carries the request's id (and the signature covers it); an
// unsigned one from a plain receiver may name it in ExtRequest.
func answers(ans *Event, id string) bool {
	switch {
	case ans.Req != "":
		return ans.Req == id
	case ans.Sig != "":
		return ans.ID == id
	default:
		return true
	}
}

func errorText(ans *Event) string {
	if ans != nil && ans.Type == EventError && len(ans.Data) > 0 {
		return ": " + string(ans.Data)
	}
	return ""
}

// interpret turns an HTTP status and answer event into a result or an
// error of the documented kinds.
func (t *CloudEventsTarget) interpret(req Request, status int, ans *Event) ([]byte, error) {
	if status == http.StatusOK && ans != nil && ans.Type == EventResult && answers(ans, req.ID) {
		return ans.Data, nil // the common case, without formatting a description
	}
	where := fmt.Sprintf("target %s: %s of %q (id %s)", t.info.Name, req.Kind, req.Function, req.ID)
	msg := errorText(ans)
	switch {
	case status == http.StatusRequestEntityTooLarge:
		return nil, fmt.Errorf("%w: %s: HTTP 413%s", ErrPayloadTooLarge, where, msg)
	case status == http.StatusTooManyRequests || status/100 == 5:
		return nil, fmt.Errorf("%w: %s: HTTP %d%s", ErrUnreachable, where, status, msg)
	case status == http.StatusConflict:
		return nil, fmt.Errorf("%w: %w: %s: HTTP 409%s", ErrRejected, ErrStateMismatch, where, msg)
	case status/100 != 2:
		return nil, fmt.Errorf("%w: %s: HTTP %d%s", ErrRejected, where, status, msg)
	case ans == nil:
		return nil, fmt.Errorf("%w: %s: HTTP %d without an answer event", ErrRejected, where, status)
	}
	if ans.Type != EventError && slices.Contains(req.AnswerTypes, ans.Type) && answers(ans, req.ID) {
		return ans.Data, nil
	}
	if !answers(ans, req.ID) {
		return nil, fmt.Errorf("%w: %s: the signed answer is for request %q", ErrRejected, where, ans.ID)
	}
	switch ans.Type {
	case EventResult:
		return ans.Data, nil
	case EventError:
		if ans.FnErr == "true" {
			return nil, &FunctionError{Function: req.Function, Target: t.info.Name, Message: string(ans.Data)}
		}
		return nil, fmt.Errorf("%w: %s: error answer with HTTP %d%s", ErrRejected, where, status, msg)
	default:
		return nil, fmt.Errorf("%w: %s: answer has type %q, want %s or %s (or a type in Spec.AnswerTypes)", ErrRejected, where, ans.Type, EventResult, EventError)
	}
}

func (t *CloudEventsTarget) newEvent(typ, function, id, gen string, data []byte) Event {
	return t.newEventReply(typ, function, id, gen, "", data)
}

func (t *CloudEventsTarget) newEventReply(typ, function, id, gen, replyTo string, data []byte) Event {
	ev := Event{ID: id, Source: t.opts.Source, Type: typ, Subject: function, Time: t.now(), Gen: gen, ReplyTo: replyTo, Data: data}
	if t.signer != nil {
		ev.Sig = t.signer.sign(&ev)
	}
	return ev
}

// post sends ev in binary mode and returns the status and the answer
// event, if any, read into ans (which the caller provides, so that it
// may live on its stack).
//
// For a 429 or 503 it sets *after to the wait its Retry-After asks for.
func (t *CloudEventsTarget) post(ctx context.Context, ev, ans *Event, after *time.Duration) (int, *Event, error) {
	resp, err := t.send(ctx, ev)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("migrate: target %s: %w", t.info.Name, ctx.Err())
		}
		return 0, nil, fmt.Errorf("%w: target %s: %v", ErrUnreachable, t.info.Name, err)
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	if status/100 == 3 {
		return status, nil, fmt.Errorf("%w: target %s: HTTP %d redirect to %q not followed (the CloudEvents webhook spec forbids it; set CloudEventsOptions.FollowRedirects to follow)",
			ErrRejected, t.info.Name, status, resp.Header.Get("Location"))
	}
	body, err := readAnswer(resp, t.opts.MaxAnswerBytes)
	if err != nil {
		return status, nil, fmt.Errorf("target %s: %w", t.info.Name, err)
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		*after = parseRetryAfter(resp.Header.Get("Retry-After"), t.now())
	}
	err = readWireEvent(ctx, resp.Header, body, ans)
	if errors.Is(err, errNotCloudEvent) {
		if status/100 == 2 && len(body) > 0 {
			return status, nil, fmt.Errorf("%w: target %s: HTTP %d answer is not a CloudEvent (%d bytes of %q)",
				ErrRejected, t.info.Name, status, len(body), resp.Header.Get("Content-Type"))
		}
		return status, nil, nil
	}
	if err != nil {
		return status, nil, fmt.Errorf("%w: target %s: HTTP %d answer is a malformed CloudEvent: %v", ErrRejected, t.info.Name, status, err)
	}
	if err := t.checkSignature(ans); err != nil {
		return status, nil, err
	}
	return resp.StatusCode, ans, nil
}

// send posts ev. With the target's own client it hands the request
// straight to the transport: that skips what http.Client does per
// request for cookies, timeouts and redirects (a copy of every header
// among it), none of which that client uses. Should the endpoint
// redirect and FollowRedirects be set, the request is sent again through
// the client, which follows the redirect.
func (t *CloudEventsTarget) send(ctx context.Context, ev *Event) (*http.Response, error) {
	if t.rt == nil {
		return t.opts.Client.Do(t.newRequest(ctx, ev, true))
	}
	resp, err := t.rt.RoundTrip(t.newRequest(ctx, ev, false))
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", t.url, err)
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if !t.opts.FollowRedirects {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return t.opts.Client.Do(t.newRequest(ctx, ev, true))
	}
	return resp, nil
}

// newRequest returns the HTTP request carrying ev in binary mode;
// rewindable gives it a GetBody, which a client needs to follow a
// redirect.
func (t *CloudEventsTarget) newRequest(ctx context.Context, ev *Event, rewindable bool) *http.Request {
	hreq := (&http.Request{
		Method: http.MethodPost, URL: t.u, Host: t.u.Host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, 10), ContentLength: int64(len(ev.Data)), Body: http.NoBody,
	}).WithContext(ctx)
	data := ev.Data
	if len(data) > 0 {
		// A NopCloser around a bytes.Reader, which net/http recognises
		// as in memory: it sends headers and body in one write. (A body
		// of a type of its own costs a second write, and TCP segment.)
		hreq.Body = io.NopCloser(bytes.NewReader(data))
	}
	if rewindable {
		hreq.GetBody = func() (io.ReadCloser, error) {
			if len(data) == 0 {
				return http.NoBody, nil
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		}
	}
	ev.writeHeaders(hreq.Header)
	hreq.Header["User-Agent"] = emptyValue // net/http then sends no User-Agent line: each header line costs both ends
	return hreq
}

// MaxRetryAfter bounds the wait a Retry-After header can ask for: a
// longer one is cut to it (and a lease fails over once the wait would
// outlast its Options.FailoverAfter).
const MaxRetryAfter = time.Minute

// parseRetryAfter reads a Retry-After value (RFC 9110 10.2.3: seconds, or
// an HTTP date) as a wait from now, bounded by MaxRetryAfter; 0 when the
// value is absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		d = time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	return max(0, min(d, MaxRetryAfter))
}

// RetryAfterError is an ErrUnreachable error of a target that asked to be
// retried no sooner than After (an HTTP Retry-After). A lease waits at
// least that long before its next attempt. Targets of one's own may
// return it.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
}

// Unwrap returns the underlying error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// emptyValue is a header value net/http never modifies.
var emptyValue = []string{""}

func readAnswer(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: answer of %d bytes, limit %d", ErrPayloadTooLarge, resp.ContentLength, limit)
	}
	b, over, err := readAll(resp.Body, resp.ContentLength, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: read answer: %v", ErrUnreachable, err)
	}
	if over {
		return nil, fmt.Errorf("%w: answer over %d bytes", ErrPayloadTooLarge, limit)
	}
	return b, nil
}

func (t *CloudEventsTarget) checkSignature(ans *Event) error {
	if t.signer == nil || (ans.Sig == "" && !t.opts.RequireSignedAnswers) {
		return nil
	}
	if err := t.signer.verify(ans, t.now(), t.opts.Window); err != nil {
		return fmt.Errorf("%w: target %s: answer: %w", ErrRejected, t.info.Name, err)
	}
	return nil
}

// setDefaults gives a target created without a key or clock the Mover's.
// Called by New before the target is used.
func (t *CloudEventsTarget) setDefaults(key []byte, clock Clock) {
	if t.opts.Clock == nil {
		t.opts.Clock = clock
	}
	if t.signer == nil && len(key) > 0 {
		t.signer = newSigner(key)
	}
}

// authenticated reports whether requests are signed, or sent with a TLS
// client certificate (mutual TLS).
func (t *CloudEventsTarget) authenticated() bool {
	if t.signer != nil {
		return true
	}
	tr, ok := t.opts.Client.Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil || !strings.HasPrefix(t.url, "https:") {
		return false
	}
	c := tr.TLSClientConfig
	return len(c.Certificates) > 0 || c.GetClientCertificate != nil
}
