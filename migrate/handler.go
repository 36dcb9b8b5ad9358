package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero fields of [HandlerOptions] and [Options].
const (
	DefaultWindow          = 5 * time.Minute
	DefaultMaxPayloadBytes = 1 << 20  // 1 MiB
	DefaultMaxStateBytes   = 64 << 20 // 64 MiB
	DefaultDedupEntries    = 100_000
	DefaultBodyTimeout     = 10 * time.Second
)

// initialBodyBytes is the most a Handler allocates for a body before its
// bytes arrive: a body declared longer grows with what arrives, so a
// stalled request claiming a large Content-Length costs this, not its
// claim.
const initialBodyBytes = 64 << 10

// HandlerOptions configure a [Handler]. Zero fields take the documented
// defaults.
type HandlerOptions struct {
	// Key is the shared HMAC key requests must be signed with (see
	// [Sign]). Required unless Insecure is set.
	Key []byte
	// Insecure serves unsigned requests. Only for a handler served with
	// mutual TLS (tls.RequireAndVerifyClientCert), which then does the
	// authentication, or in tests with plain CloudEvents clients. Neither
	// signature nor time window is checked; deduplication still applies.
	Insecure bool
	// Source is the CloudEvents source of answers; default "updraft/handler".
	Source string
	// Window is how far a request's time may be from this clock; requests
	// outside it are refused as replays (or skewed clocks), and answers
	// are remembered for deduplication at least this long.
	// Default DefaultWindow.
	Window time.Duration
	// MaxPayloadBytes bounds an invocation's payload; default
	// DefaultMaxPayloadBytes.
	MaxPayloadBytes int64
	// MaxStateBytes bounds a state transfer; default DefaultMaxStateBytes.
	MaxStateBytes int64
	// DedupEntries bounds the answers remembered per function; default
	// DefaultDedupEntries. An id evicted early (beyond this count inside
	// the window) would run again if replayed.
	DedupEntries int
	// BodyTimeout bounds how long a request's body may take to arrive
	// after its header (a slow or stalled body is cut off, 408); default
	// DefaultBodyTimeout. Applies when served by net/http's Server.
	BodyTimeout time.Duration
	// DedupPath, when set, is a file in which the Handler records every
	// invocation it ran (with its answer) and every put-state it applied,
	// fsynced before it answers (concurrent requests share one fsync), so
	// that a request replayed or retried within Window after a restart is
	// answered from the record instead of running again. Opened by
	// OpenHandler, which keeps one Window's worth. Default: deduplication
	// lives in memory only.
	DedupPath string
	// Clock is the time source; default time.Now.
	Clock Clock
	// Logger receives refusals and failures; nil discards.
	Logger *slog.Logger
}

// Handler serves registered Funcs over CloudEvents 1.0 HTTP, binary mode,
// so that the code a host runs locally can be deployed unchanged in a
// remote region (see examples/region). It verifies each request's
// signature (in either form, see [ExtSignature]) and time window, runs
// each idempotency key (the event id) once per function, and answers with
// an EventResult or EventError event signed with the time in the signature
// (no ce-time).
//
// Register functions before serving; ServeHTTP is safe for concurrent use.
type Handler struct {
	opts   HandlerOptions
	signer *signer // nil when Insecure without a key

	mu    sync.RWMutex
	funcs map[string]*hosted // guarded by mu

	// refusals numbers the refusals of requests without a readable id,
	// which get "refusal-<started>-<n>" as their own: unique per source.
	refusals atomic.Uint64
	started  string // base-36 Unix nanoseconds at NewHandler

	log      *dedupLog                // nil without DedupPath
	restored map[string][]dedupRecord // read from log at open, by function; consumed by Register under mu
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler with no functions. It panics where
// [OpenHandler] returns an error: a handler that would refuse every
// request, trust a guessable key, or cannot open its DedupPath is a
// configuration error worth finding at start-up.
func NewHandler(opts HandlerOptions) *Handler {
	h, err := OpenHandler(opts)
	if err != nil {
		panic(err.Error())
	}
	return h
}

// OpenHandler returns a Handler with no functions, or an error if
// opts.Key is shorter than MinKeyBytes, or empty while opts.Insecure is
// not set, or opts.DedupPath cannot be read and rewritten. Close it to
// release its DedupPath.
func OpenHandler(opts HandlerOptions) (*Handler, error) {
	if len(opts.Key) == 0 && !opts.Insecure {
		return nil, errors.New("migrate: NewHandler: HandlerOptions.Key is empty (set Insecure to serve unsigned events)")
	}
	if err := checkKey(opts.Key); len(opts.Key) > 0 && err != nil {
		return nil, fmt.Errorf("migrate: NewHandler: %w", err)
	}
	if opts.Source == "" {
		opts.Source = "updraft/handler"
	}
	positiveOr(&opts.Window, DefaultWindow)
	positiveOr(&opts.MaxPayloadBytes, DefaultMaxPayloadBytes)
	positiveOr(&opts.MaxStateBytes, DefaultMaxStateBytes)
	positiveOr(&opts.DedupEntries, DefaultDedupEntries)
	positiveOr(&opts.BodyTimeout, DefaultBodyTimeout)
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, funcs: make(map[string]*hosted), started: strconv.FormatInt(time.Now().UnixNano(), 36)}
	if len(opts.Key) > 0 {
		h.signer = newSigner(opts.Key)
	}
	if opts.DedupPath != "" {
		log, recs, err := openDedupLog(opts.DedupPath, opts.Clock(), opts.Window)
		if err != nil {
			return nil, err
		}
		h.log, h.restored = log, make(map[string][]dedupRecord)
		for _, r := range recs {
			h.restored[r.function] = append(h.restored[r.function], r)
		}
	}
	return h, nil
}

// Close releases the Handler's DedupPath; it does nothing without one.
// Requests served after Close are not recorded durably.
func (h *Handler) Close() error {
	if h.log == nil {
		return nil
	}
	return h.log.Close()
}

// Register serves f (with its state st, which may be nil) under name. It
// panics on an empty name, a nil f or a name registered twice: these are
// programmer errors at start-up.
func (h *Handler) Register(name string, f Func, st State) {
	if name == "" || f == nil {
		panic(fmt.Sprintf("migrate: Handler.Register(%q): empty name or nil Func", name))
	}
	if err := checkName(name); err != nil {
		panic("migrate: Handler.Register: " + err.Error())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.funcs[name]; dup {
		panic(fmt.Sprintf("migrate: Handler.Register(%q): registered twice", name))
	}
	hf := &hosted{name: name, f: f, st: st, log: h.log,
		dedup: newDedup(h.opts.DedupEntries, h.opts.Window), puts: newDedup(h.opts.DedupEntries, h.opts.Window)}
	for _, r := range h.restored[name] {
		hf.restore(r)
	}
	delete(h.restored, name)
	h.funcs[name] = hf
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "migrate: POST a CloudEvent (binary mode)", http.StatusMethodNotAllowed)
		return
	}
	// Only a state transfer (or a structured-mode event, whose type is in
	// the body) may be larger than a payload; nothing is read beyond the
	// limit, before the signature is checked.
	limit := h.opts.MaxPayloadBytes
	if t := header(r.Header, hdrType); t == EventPutState || t == "" {
		limit = max(h.opts.MaxStateBytes, h.opts.MaxPayloadBytes)
	}
	if len(r.TransferEncoding) > 0 {
		// net/http drops a Content-Length sent beside Transfer-Encoding
		// before any handler runs, so the pair cannot be refused here.
		// RFC 9112 6.3 allows reading such a request by its
		// Transfer-Encoding alone provided the connection is closed after
		// the answer: then nothing after this body is ever read as a
		// request of its own (no desync behind a proxy).
		w.Header()["Connection"] = []string{"close"}
	}
	if r.ContentLength > limit {
		h.refuse(w, "", http.StatusRequestEntityTooLarge, fmt.Errorf("%w: request body of %d bytes, limit %d", ErrPayloadTooLarge, r.ContentLength, limit))
		return
	}
	// A slow or stalled body is cut off (not supported by every
	// ResponseWriter, e.g. httptest's; then the server's own timeouts apply).
	_ = http.NewResponseController(w).SetReadDeadline(h.opts.Clock().Add(h.opts.BodyTimeout))
	body, err := readBody(r.Body, r.ContentLength, limit)
	if err != nil {
		status := http.StatusBadRequest
		var ne net.Error
		switch {
		case errors.Is(err, ErrPayloadTooLarge):
			status = http.StatusRequestEntityTooLarge
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
			status = http.StatusRequestTimeout
			w.Header()["Connection"] = []string{"close"}
		}
		h.refuse(w, "", status, err)
		return
	}
	var ev Event
	if err := readWireEvent(r.Context(), r.Header, body, &ev); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errUnsupportedFormat) {
			status = http.StatusUnsupportedMediaType
		}
		h.refuse(w, "", status, fmt.Errorf("migrate: handler: request is not a valid CloudEvent: %w", err))
		return
	}
	status, answer, why := h.serve(r.Context(), &ev)
	if status != http.StatusOK {
		h.refuse(w, ev.ID, status, why)
		return
	}
	h.answer(w, ev.ID, answer, why)
}

// readBody reads a whole body of at most limit bytes, allocating no more
// than initialBodyBytes before the bytes arrive.
func readBody(body io.Reader, length, limit int64) ([]byte, error) {
	if length > initialBodyBytes {
		length = -1 // grow with what arrives, not with what is claimed
	}
	b, over, err := readAll(body, length, limit)
	if err != nil {
		return nil, fmt.Errorf("migrate: handler: read request body: %w", err)
	}
	if over {
		return nil, fmt.Errorf("%w: request body over %d bytes", ErrPayloadTooLarge, limit)
	}
	return b, nil
}

// readAll reads r to its end, expecting length bytes (-1 when unknown),
// and reports over, instead of reading on, once r holds more than limit.
// With a known length it reads into one buffer of exactly that size, then
// reads once more to see the end (so net/http can reuse the connection at
// once); a body longer than it said is read on, up to limit.
func readAll(r io.Reader, length, limit int64) (b []byte, over bool, err error) {
	if length >= 0 && length <= limit {
		b = make([]byte, length, length+1) // the spare byte sees the end
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, false, err
		}
		n, err := io.ReadFull(r, b[length:length+1])
		if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			return b, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		b = b[:length+1] // longer than it said: read on below
	}
	if b == nil {
		b = make([]byte, 0, min(max(length, 512), limit)+1)
	}
	buf := bytes.NewBuffer(b)
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1-int64(len(b)))); err != nil {
		return nil, false, err
	}
	if int64(buf.Len()) > limit {
		return nil, true, nil
	}
	return buf.Bytes(), false, nil
}

// serve checks and runs one request. It returns the HTTP status, the
// answer's data, and either the function's own error (status 200) or the
// reason for a refusal.
func (h *Handler) serve(ctx context.Context, ev *Event) (int, []byte, error) {
	if !h.opts.Insecure {
		if err := h.signer.verify(ev, h.opts.Clock(), h.opts.Window); err != nil {
			h.opts.Logger.Warn("migrate: refused request", "id", ev.ID, "type", ev.Type, "err", err)
			return http.StatusUnauthorized, nil, err
		}
	}
	if ev.Type == EventProbe {
		return http.StatusOK, nil, nil
	}
	kind, ok := kindOf(ev.Type)
	if !ok {
		return http.StatusBadRequest, nil, fmt.Errorf("migrate: event %q has type %q; want %s, %s, %s or %s",
			ev.ID, ev.Type, EventInvoke, EventPutState, EventGetState, EventProbe)
	}
	h.mu.RLock()
	fn := h.funcs[ev.Subject]
	h.mu.RUnlock()
	if fn == nil {
		return http.StatusNotFound, nil, fmt.Errorf("%w: %q is not registered with this handler", ErrUnknownFunction, ev.Subject)
	}
	if kind != KindPutState {
		if err := fn.checkGeneration(ev.Gen); err != nil {
			return http.StatusConflict, nil, err
		}
	}
	switch kind {
	case KindInvoke:
		if n := int64(len(ev.Data)); n > h.opts.MaxPayloadBytes {
			return http.StatusRequestEntityTooLarge, nil, fmt.Errorf("%w: function %q payload is %d bytes, limit %d",
				ErrPayloadTooLarge, fn.name, n, h.opts.MaxPayloadBytes)
		}
		res, err := fn.invoke(ctx, ev.ID, ev.Data, h.opts.Clock())
		return http.StatusOK, res, err
	case KindPutState:
		if err := fn.putState(ctx, ev.ID, ev.Gen, ev.Data, h.opts.Clock()); err != nil {
			return http.StatusUnprocessableEntity, nil, err
		}
		return http.StatusOK, nil, nil
	default: // KindGetState
		data, err := fn.getState(ctx, h.opts.MaxStateBytes)
		if errors.Is(err, ErrPayloadTooLarge) {
			return http.StatusRequestEntityTooLarge, nil, err
		}
		if err != nil {
			return http.StatusInternalServerError, nil, err
		}
		return http.StatusOK, data, nil
	}
}

// answer writes a 200 with an EventResult, or an EventError carrying the
// function's own error.
func (h *Handler) answer(w http.ResponseWriter, reqID string, data []byte, fnErr error) {
	ev := h.newAnswer(reqID, EventResult, data)
	if fnErr != nil {
		ev.Type, ev.FnErr, ev.Data = EventError, "true", []byte(fnErr.Error())
	}
	h.write(w, &ev, http.StatusOK)
}

// WWWAuthenticate is the challenge a [Handler] sends with a 401 (RFC 9110
// 11.6.1): the scheme names the signature extension that authenticates
// requests (see SPEC.md).
const WWWAuthenticate = `UpdraftHMAC realm="updraft", extension="` + ExtSignature + `", alg="hmac-sha256"`

// refuse writes a non-2xx status with an EventError explaining why.
func (h *Handler) refuse(w http.ResponseWriter, reqID string, status int, why error) {
	if status == http.StatusUnauthorized {
		w.Header()["Www-Authenticate"] = []string{WWWAuthenticate}
	}
	ev := h.newAnswer(reqID, EventError, []byte(why.Error()))
	h.write(w, &ev, status)
}

// newAnswer returns the answer to request reqID. It carries the request's
// id (unique with its own source), so that its signature binds it to the
// request it answers.
func (h *Handler) newAnswer(reqID, typ string, data []byte) Event {
	id := reqID
	if id == "" {
		id = "refusal-" + h.started + "-" + strconv.FormatUint(h.refusals.Add(1), 10)
	}
	return Event{ID: id, Source: h.opts.Source, Type: typ, Time: h.opts.Clock(), Data: data}
}

// smallAnswerBytes is the size up to which net/http buffers a whole
// answer before sending its header, and so sets its Content-Length itself.
const smallAnswerBytes = 2048

func (h *Handler) write(w http.ResponseWriter, ev *Event, status int) {
	if h.signer != nil {
		ev.Sig = h.signer.sign(ev)
	}
	hdr := w.Header()
	ev.writeHeaders(hdr)
	if len(ev.Data) > smallAnswerBytes {
		hdr["Content-Length"] = []string{strconv.Itoa(len(ev.Data))}
	} // else net/http, which holds the whole answer until the handler returns, adds it
	w.WriteHeader(status)
	if _, err := w.Write(ev.Data); err != nil {
		h.opts.Logger.Debug("migrate: write answer", "id", ev.ID, "err", err)
	}
}
