package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/updraft-dev/updraft/hal"
)

// CloudEventsOptions configure a [CloudEventsTarget]. Zero fields take the
// documented defaults.
type CloudEventsOptions struct {
	Region         string     // required: matched against Spec.Regions
	Provider       string     // default "cloudevents"
	Capacity       hal.Vector // empty = unbounded
	CostPerMillion float64

	// Key signs requests (see [Sign]). When empty, the Mover's
	// Options.Key is used; New fails if neither is set.
	Key []byte
	// RequireSignedAnswers refuses answers without a valid signature. By
	// default an answer's signature is checked when present, so plain
	// CloudEvents receivers (Knative, OpenFaaS, Cloud Run) work.
	RequireSignedAnswers bool
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
	// Clock stamps requests; default time.Now.
	Clock Clock
}

// CloudEventsTarget invokes functions through any runtime that accepts
// CloudEvents 1.0 over HTTP in binary mode: a [Handler] in another region,
// Knative, OpenFaaS, Cloud Run, Azure Functions. A request is an event of
// type [EventInvoke], [EventPutState] or [EventGetState] whose subject is
// the function and whose id is the idempotency key; the answer is an event
// of type [EventResult] or [EventError]. Status codes are checked
// explicitly: a 4xx or 5xx is an error even when it carries no event.
//
// A CloudEventsTarget is safe for concurrent use.
type CloudEventsTarget struct {
	info TargetInfo
	url  string
	opts CloudEventsOptions
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
	if opts.Provider == "" {
		opts.Provider = "cloudevents"
	}
	if opts.Source == "" {
		opts.Source = "updraft/lease"
	}
	if opts.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		opts.Client = &http.Client{Transport: tr}
	}
	if opts.MaxAnswerBytes <= 0 {
		opts.MaxAnswerBytes = DefaultMaxStateBytes
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	opts.Key = bytes.Clone(opts.Key)
	return &CloudEventsTarget{
		info: TargetInfo{Name: name, Region: opts.Region, Provider: opts.Provider,
			Capacity: opts.Capacity.Clone(), CostPerMillion: opts.CostPerMillion},
		url:  endpoint,
		opts: opts,
	}, nil
}

// Info implements [Target].
func (t *CloudEventsTarget) Info() TargetInfo { return t.info }

// URL returns the endpoint requests are posted to.
func (t *CloudEventsTarget) URL() string { return t.url }

// Probe implements [Target]: it posts an [EventProbe] and expects a 2xx.
func (t *CloudEventsTarget) Probe(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	ev := t.newEvent(EventProbe, "", fmt.Sprintf("probe-%d", start.UnixNano()), nil)
	status, _, err := t.post(ctx, &ev)
	if err != nil {
		return 0, err
	}
	if status/100 != 2 {
		return 0, fmt.Errorf("%w: target %s: probe answered HTTP %d", ErrUnreachable, t.info.Name, status)
	}
	return time.Since(start), nil
}

// Call implements [Target].
func (t *CloudEventsTarget) Call(ctx context.Context, req Request) ([]byte, error) {
	typ := EventType(req.Kind)
	if typ == "" {
		return nil, fmt.Errorf("migrate: target %s: request kind %d is unknown", t.info.Name, req.Kind)
	}
	ev := t.newEvent(typ, req.Function, req.ID, req.Payload)
	status, ans, err := t.post(ctx, &ev)
	if err != nil {
		return nil, err
	}
	return t.interpret(req, status, ans)
}

// interpret turns an HTTP status and answer event into a result or an
// error of the documented kinds.
func (t *CloudEventsTarget) interpret(req Request, status int, ans *event.Event) ([]byte, error) {
	where := fmt.Sprintf("target %s: %s of %q (id %s)", t.info.Name, req.Kind, req.Function, req.ID)
	msg := ""
	if ans != nil && ans.Type() == EventError {
		msg = ": " + string(ans.Data())
	}
	switch {
	case status == http.StatusRequestEntityTooLarge:
		return nil, fmt.Errorf("%w: %s: HTTP 413%s", ErrPayloadTooLarge, where, msg)
	case status == http.StatusTooManyRequests || status/100 == 5:
		return nil, fmt.Errorf("%w: %s: HTTP %d%s", ErrUnreachable, where, status, msg)
	case status/100 != 2:
		return nil, fmt.Errorf("%w: %s: HTTP %d%s", ErrRejected, where, status, msg)
	case ans == nil:
		return nil, fmt.Errorf("%w: %s: HTTP %d without an answer event", ErrRejected, where, status)
	}
	if r, _ := ans.Extensions()[ExtRequest].(string); r != "" && r != req.ID {
		return nil, fmt.Errorf("%w: %s: answer is for request %q", ErrRejected, where, r)
	}
	switch ans.Type() {
	case EventResult:
		return ans.Data(), nil
	case EventError:
		if f, _ := ans.Extensions()[ExtFunctionError].(string); f == "true" {
			return nil, &FunctionError{Function: req.Function, Target: t.info.Name, Message: string(ans.Data())}
		}
		return nil, fmt.Errorf("%w: %s: error answer with HTTP %d%s", ErrRejected, where, status, msg)
	default:
		return nil, fmt.Errorf("%w: %s: answer has type %q, want %s or %s", ErrRejected, where, ans.Type(), EventResult, EventError)
	}
}

func (t *CloudEventsTarget) newEvent(typ, function, id string, data []byte) event.Event {
	ev := event.New()
	ev.SetID(id)
	ev.SetSource(t.opts.Source)
	ev.SetType(typ)
	if function != "" {
		ev.SetSubject(function)
	}
	ev.SetTime(t.opts.Clock())
	if len(data) > 0 {
		_ = ev.SetData("application/octet-stream", data)
	}
	if len(t.opts.Key) > 0 {
		_ = Sign(t.opts.Key, &ev)
	}
	return ev
}

// post sends ev and returns the status and the answer event, if any.
func (t *CloudEventsTarget) post(ctx context.Context, ev *event.Event) (int, *event.Event, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("migrate: target %s: %w", t.info.Name, err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(ev), hreq); err != nil {
		return 0, nil, fmt.Errorf("migrate: target %s: encode event %q: %w", t.info.Name, ev.ID(), err)
	}
	resp, err := t.opts.Client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("migrate: target %s: %w", t.info.Name, ctx.Err())
		}
		return 0, nil, fmt.Errorf("%w: target %s: %v", ErrUnreachable, t.info.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, t.opts.MaxAnswerBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: target %s: read answer: %v", ErrUnreachable, t.info.Name, err)
	}
	if int64(len(body)) > t.opts.MaxAnswerBytes {
		return 0, nil, fmt.Errorf("%w: target %s: answer over %d bytes", ErrPayloadTooLarge, t.info.Name, t.opts.MaxAnswerBytes)
	}
	msg := cehttp.NewMessage(resp.Header, io.NopCloser(bytes.NewReader(body)))
	if msg.ReadEncoding() == binding.EncodingUnknown {
		if resp.StatusCode/100 == 2 && len(body) > 0 {
			return 0, nil, fmt.Errorf("%w: target %s: HTTP %d answer is not a CloudEvent (%d bytes of %q)",
				ErrRejected, t.info.Name, resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
		}
		return resp.StatusCode, nil, nil
	}
	ans, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: target %s: HTTP %d answer is a malformed CloudEvent: %v", ErrRejected, t.info.Name, resp.StatusCode, err)
	}
	if err := t.checkSignature(ans); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, ans, nil
}

func (t *CloudEventsTarget) checkSignature(ans *event.Event) error {
	_, signed := ans.Extensions()[ExtSignature]
	if !signed && !t.opts.RequireSignedAnswers {
		return nil
	}
	if len(t.opts.Key) == 0 {
		return nil
	}
	if err := Verify(t.opts.Key, ans, t.opts.Clock(), t.opts.Window); err != nil {
		return fmt.Errorf("%w: target %s: answer: %w", ErrRejected, t.info.Name, err)
	}
	return nil
}

// setDefaultKey gives a target created without a key the Mover's key.
// Called by New before the target is used.
func (t *CloudEventsTarget) setDefaultKey(key []byte) {
	if len(t.opts.Key) == 0 {
		t.opts.Key = bytes.Clone(key)
	}
}

func (t *CloudEventsTarget) hasKey() bool { return len(t.opts.Key) > 0 }
