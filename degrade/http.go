package degrade

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HeaderDegraded names the response header that lists, on every response
// the middleware lets through or rejects while anything is degraded, the
// functions currently not in Normal mode (comma-separated, sorted).
const HeaderDegraded = "Updraft-Degraded"

// Rejection is the JSON body of a rejected request (when the client accepts
// JSON) and the text body's content in plain words.
type Rejection struct {
	Error             string    `json:"error"` // "disabled", "throttled" or "shed"
	Function          string    `json:"function"`
	Mode              Mode      `json:"mode"`
	Reason            string    `json:"reason,omitempty"`
	Until             time.Time `json:"until"`
	RetryAfterSeconds int64     `json:"retryAfterSeconds"`
	Message           string    `json:"message"` // plain-language, for people
}

// Middleware admits each request of function through the controller before
// calling next, and tells users when it does not:
//
//   - a disabled function, or a shed request, answers 503 Service
//     Unavailable; a throttled one answers 429 Too Many Requests;
//   - every rejection carries Retry-After (seconds) and a plain-language
//     message saying what is reduced, why and until when, as JSON when the
//     client's Accept prefers application/json and as text otherwise;
//   - while any function is degraded, every response (served or not)
//     carries [HeaderDegraded] naming the degraded functions.
//
// The request's priority comes from Options.RequestPriority. The slot is
// released when next returns, or panics.
func (c *Controller) Middleware(function string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prio := PriorityNormal
		if c.requestPriority != nil {
			prio = c.requestPriority(r)
		}
		release, err := c.AcquirePriority(function, prio)
		if degraded := c.DegradedFunctions(); degraded != "" {
			w.Header().Set(HeaderDegraded, degraded)
		}
		if err != nil {
			WriteRejection(w, r, err)
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// WriteRejection answers r with the HTTP form of a rejection returned by
// [Controller.Acquire] or [Controller.Allow]: 503 for ErrDisabled and
// ErrShed, 429 for ErrThrottled, with Retry-After and the user message as
// JSON or text by the request's Accept header. Hosts that call Acquire
// themselves use it to answer exactly like the middleware. An error that is
// not a [*RejectedError] answers 503 with a generic message.
//
// The bodies are rendered once per rejection value and reused, since the
// controller hands the same *RejectedError to a stream of refusals: under
// overload, turning a request away stays cheap.
func WriteRejection(w http.ResponseWriter, r *http.Request, err error) {
	var rej *RejectedError
	if !errors.As(err, &rej) {
		http.Error(w, "service temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	status := http.StatusServiceUnavailable
	if errors.Is(rej, ErrThrottled) {
		status = http.StatusTooManyRequests
	}
	b := rej.rendered()
	h := w.Header()
	h["Retry-After"] = []string{b.retryAfter}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	if PrefersJSON(r.Header.Get("Accept")) {
		h["Content-Type"] = []string{"application/json; charset=utf-8"}
		w.WriteHeader(status)
		_, _ = w.Write(b.json) // the client went away; nothing to do
		return
	}
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	w.WriteHeader(status)
	_, _ = w.Write(b.text)
}

// renderedRejection is a rejection's HTTP form, computed once.
type renderedRejection struct {
	retryAfter string // Retry-After header value
	text       []byte // text/plain body
	json       []byte // application/json body
}

// rendered returns the rejection's HTTP form, computing it on first use.
// Concurrent first uses may each compute it; the results are equal.
func (e *RejectedError) rendered() *renderedRejection {
	if e.cache != nil {
		if b := e.cache.Load(); b != nil {
			return b
		}
	}
	kind := "disabled"
	switch {
	case errors.Is(e.cause, ErrThrottled):
		kind = "throttled"
	case errors.Is(e.cause, ErrShed):
		kind = "shed"
	}
	msg := e.Message()
	doc := Rejection{
		Error:             kind,
		Function:          e.Function,
		Mode:              e.Mode,
		Reason:            e.Reason,
		Until:             e.Until.UTC(),
		RetryAfterSeconds: e.RetryAfterSeconds(),
		Message:           msg,
	}
	js, err := json.Marshal(doc)
	if err != nil { // only an invalid Mode in a hand-made RejectedError
		js = []byte(`{"error":"unavailable"}`)
	}
	b := &renderedRejection{
		retryAfter: strconv.FormatInt(e.RetryAfterSeconds(), 10),
		text:       []byte(msg + "\n"),
		json:       append(js, '\n'),
	}
	if e.cache != nil {
		e.cache.Store(b)
	}
	return b
}

// StatusHandler serves the controller's [Controller.Status] as JSON on GET
// and HEAD: {"degraded": bool, "time": ..., "functions": [{"function",
// "mode", "policy", "since", "reason", "until", ...}]}. Other methods get
// 405 Method Not Allowed.
func (c *Controller) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "degrade: status: method "+r.Method+" not allowed, use GET", http.StatusMethodNotAllowed)
			return
		}
		doc := &statusJSON{Time: c.now().UTC(), Functions: c.Status(), Guard: c.GuardState()}
		for i := range doc.Functions {
			s := &doc.Functions[i]
			s.Since, s.Until = s.Since.UTC(), s.Until.UTC()
			if s.Mode != Normal {
				doc.Degraded = true
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if degraded := c.DegradedFunctions(); degraded != "" {
			w.Header().Set(HeaderDegraded, degraded)
		}
		if r.Method == http.MethodHead {
			return
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(doc) // the client went away; nothing to do
	})
}

// PrefersJSON reports whether an HTTP Accept header value ranks JSON
// (application/json or any +json type) above plain text. Missing or
// unparsable values, and ties, prefer text. Wildcards count for both.
func PrefersJSON(accept string) bool {
	jsonQ, textQ := -1.0, -1.0
	for _, item := range strings.Split(accept, ",") {
		mediaType, q, ok := parseAcceptItem(item)
		if !ok {
			continue
		}
		switch {
		case mediaType == "application/json" || (strings.HasPrefix(mediaType, "application/") && strings.HasSuffix(mediaType, "+json")):
			jsonQ = max(jsonQ, q)
		case mediaType == "text/plain":
			textQ = max(textQ, q)
		case mediaType == "application/*":
			jsonQ = max(jsonQ, q-0.0001) // a specific type beats a wildcard
		case mediaType == "text/*":
			textQ = max(textQ, q-0.0001)
		case mediaType == "*/*":
			jsonQ, textQ = max(jsonQ, q-0.0002), max(textQ, q-0.0002)
		}
	}
	return jsonQ > 0 && jsonQ > textQ
}

// parseAcceptItem splits one Accept item, "type/subtype;q=0.5;x=y", into
// its lower-case media type and quality (default 1). ok is false for an
// item without a type/subtype or with a malformed q.
func parseAcceptItem(item string) (mediaType string, q float64, ok bool) {
	params := strings.Split(item, ";")
	mediaType = strings.ToLower(strings.TrimSpace(params[0]))
	if slash := strings.IndexByte(mediaType, '/'); slash <= 0 || slash == len(mediaType)-1 {
		return "", 0, false
	}
	q = 1
	for _, p := range params[1:] {
		name, value, found := strings.Cut(p, "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || v < 0 || v > 1 {
			return "", 0, false
		}
		q = v
	}
	return mediaType, q, true
}
