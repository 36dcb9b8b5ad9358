package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Errors a probe's Result.Err wraps; check with errors.Is.
var (
	// ErrUnexpectedStatus: the HTTP status was not one of those accepted.
	ErrUnexpectedStatus = errors.New("validate: unexpected HTTP status")
	// ErrBodyMismatch: the response body did not match.
	ErrBodyMismatch = errors.New("validate: response body mismatch")
	// ErrTooSlow: the probe answered, later than its latency bound.
	ErrTooSlow = errors.New("validate: latency bound exceeded")
)

// DefaultMaxBodyBytes is how much of a response body an [HTTPProbe] reads
// when HTTPProbeOptions.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// HTTPProbeOptions configure an [HTTPProbe]. The zero value sends a GET
// with a private client and accepts any 2xx status.
type HTTPProbeOptions struct {
	// Client sends the request; nil means a client of the probe's own
	// that does not follow redirects.
	Client *http.Client
	// Method is the HTTP method; "" means GET.
	Method string
	// Header is added to the request.
	Header http.Header
	// Body is the request body, sent with every attempt.
	Body []byte
	// Status lists the accepted status codes; empty means 200–299.
	Status []int
	// BodyContains, when not empty, must occur in the response body.
	BodyContains string
	// BodyMatches, when not nil, must match the response body.
	BodyMatches *regexp.Regexp
	// MaxLatency bounds the time to the full response; 0 means no bound
	// (the Suite's per-check timeout still applies).
	MaxLatency time.Duration
	// MaxBodyBytes is how much of the body is read and matched; 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// HTTPProbe is a [Check] that sends one HTTP request and judges the
// status, the body and the latency. Evidence gives the status, the time
// taken and what was matched. An unreachable address fails. Safe for
// concurrent use.
type HTTPProbe struct {
	name string
	url  string
	opts HTTPProbeOptions
}

var _ Check = (*HTTPProbe)(nil)

// NewHTTPProbe returns a probe of rawURL (http or https, with a host). It
// rejects an empty name, a bad URL, a bad method, status codes outside
// 100–599 and negative bounds, naming the field.
func NewHTTPProbe(name, rawURL string, opts HTTPProbeOptions) (*HTTPProbe, error) {
	if name == "" {
		return nil, errors.New("validate: NewHTTPProbe: empty name")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("validate: NewHTTPProbe %q: URL: %w", name, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("validate: NewHTTPProbe %q: URL %q: scheme must be http or https", name, rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("validate: NewHTTPProbe %q: URL %q has no host", name, rawURL)
	}
	if opts.Method == "" {
		opts.Method = http.MethodGet
	}
	if strings.ContainsAny(opts.Method, " \t\r\n") {
		return nil, fmt.Errorf("validate: NewHTTPProbe %q: Method %q is not a valid token", name, opts.Method)
	}
	for i, s := range opts.Status {
		if s < 100 || s > 599 {
			return nil, fmt.Errorf("validate: NewHTTPProbe %q: Status[%d] %d is outside 100–599", name, i, s)
		}
	}
	if opts.MaxLatency < 0 {
		return nil, fmt.Errorf("validate: NewHTTPProbe %q: MaxLatency %s is negative", name, opts.MaxLatency)
	}
	if opts.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("validate: NewHTTPProbe %q: MaxBodyBytes %d is negative", name, opts.MaxBodyBytes)
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	opts.Status = slices.Clone(opts.Status)
	opts.Header = opts.Header.Clone()
	return &HTTPProbe{name: name, url: rawURL, opts: opts}, nil
}

// Name returns the probe's name.
func (p *HTTPProbe) Name() string { return p.name }

// Run sends the request and judges the response.
func (p *HTTPProbe) Run(ctx context.Context) Result {
	res := Result{Check: p.name}
	fail := func(err error) Result {
		res.Verdict, res.Score, res.Err = Fail, 0, err
		return res
	}
	req, err := http.NewRequestWithContext(ctx, p.opts.Method, p.url, bytes.NewReader(p.opts.Body))
	if err != nil {
		return fail(fmt.Errorf("validate: probe %q: request: %w", p.name, err))
	}
	for k, vs := range p.opts.Header {
		req.Header[k] = slices.Clone(vs)
	}
	start := time.Now()
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		res.Evidence = append(res.Evidence, fmt.Sprintf("%s %s: no response after %s", p.opts.Method, p.url, roundDuration(time.Since(start))))
		return fail(fmt.Errorf("validate: probe %q: %s %s: %w", p.name, p.opts.Method, p.url, err))
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, p.opts.MaxBodyBytes))
	resp.Body.Close()
	latency := time.Since(start)
	bound := "no bound"
	if p.opts.MaxLatency > 0 {
		bound = "bound " + p.opts.MaxLatency.String()
	}
	res.Evidence = append(res.Evidence, fmt.Sprintf("%s %s → %d in %s (%s), %d body bytes",
		p.opts.Method, p.url, resp.StatusCode, roundDuration(latency), bound, len(body)))
	if readErr != nil {
		return fail(fmt.Errorf("validate: probe %q: reading body: %w", p.name, readErr))
	}

	var errs []error
	if !p.statusOK(resp.StatusCode) {
		errs = append(errs, fmt.Errorf("%w: %d (%s), want %s", ErrUnexpectedStatus, resp.StatusCode, http.StatusText(resp.StatusCode), p.wantStatus()))
	}
	if p.opts.BodyContains != "" {
		ok := bytes.Contains(body, []byte(p.opts.BodyContains))
		res.Evidence = append(res.Evidence, fmt.Sprintf("body contains %q: %t", p.opts.BodyContains, ok))
		if !ok {
			errs = append(errs, fmt.Errorf("%w: body does not contain %q (starts %q)", ErrBodyMismatch, p.opts.BodyContains, excerpt(body)))
		}
	}
	if p.opts.BodyMatches != nil {
		ok := p.opts.BodyMatches.Match(body)
		res.Evidence = append(res.Evidence, fmt.Sprintf("body matches /%s/: %t", p.opts.BodyMatches, ok))
		if !ok {
			errs = append(errs, fmt.Errorf("%w: body does not match /%s/ (starts %q)", ErrBodyMismatch, p.opts.BodyMatches, excerpt(body)))
		}
	}
	if p.opts.MaxLatency > 0 && latency > p.opts.MaxLatency {
		errs = append(errs, fmt.Errorf("%w: %s > %s", ErrTooSlow, roundDuration(latency), p.opts.MaxLatency))
	}
	if len(errs) > 0 {
		return fail(fmt.Errorf("validate: probe %q: %w", p.name, errors.Join(errs...)))
	}
	res.Verdict, res.Score = Pass, 1
	return res
}

func (p *HTTPProbe) statusOK(code int) bool {
	if len(p.opts.Status) == 0 {
		return code >= 200 && code < 300
	}
	return slices.Contains(p.opts.Status, code)
}

func (p *HTTPProbe) wantStatus() string {
	if len(p.opts.Status) == 0 {
		return "2xx"
	}
	return fmt.Sprint(p.opts.Status)
}

// excerpt returns the first bytes of body, for error messages.
func excerpt(body []byte) string {
	const n = 64
	if len(body) > n {
		return string(body[:n]) + "…"
	}
	return string(body)
}

func roundDuration(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
