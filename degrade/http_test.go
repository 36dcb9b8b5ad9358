package degrade

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// get sends a GET with the given Accept header through a real HTTP client.
func get(t *testing.T, url, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func newTestServer(t *testing.T, ctl *Controller) *httptest.Server {
	t.Helper()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })
	mux := http.NewServeMux()
	for _, fn := range []string{"search", "upload", "feed", "checkout"} {
		mux.Handle("/"+fn, ctl.Middleware(fn, ok))
	}
	mux.Handle("/status", ctl.StatusHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestMiddlewareOverHTTP(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now, RequestPriority: func(r *http.Request) Priority {
		p, _ := ParsePriority(r.Header.Get("X-Test-Priority"))
		return p
	}})
	srv := newTestServer(t, ctl)

	resp, body := get(t, srv.URL+"/checkout", "")
	if resp.StatusCode != http.StatusOK || body != "served" || resp.Header.Get(HeaderDegraded) != "" {
		t.Fatalf("normal: %d %q header %q", resp.StatusCode, body, resp.Header.Get(HeaderDegraded))
	}

	until := clk.Now().Add(5 * time.Minute)
	must(t, ctl.Set("upload", Policy{Mode: Disable}, "storage is being upgraded", until))
	must(t, ctl.Set("search", Policy{Mode: Throttle, RatePerSecond: 1}, "the index is being rebuilt", until))
	must(t, ctl.Set("feed", Policy{Mode: Shed, ShedFraction: 1}, "reduced capacity", until))

	// Disabled, plain text.
	resp, body = get(t, srv.URL+"/upload", "text/html, */*;q=0.1")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "300" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(body, "storage is being upgraded") || !strings.Contains(body, "22:05:00") {
		t.Fatalf("disabled text: %d retry %q type %q body %q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body)
	}
	if got := resp.Header.Get(HeaderDegraded); got != "feed, search, upload" {
		t.Fatalf("%s on a rejection = %q", HeaderDegraded, got)
	}

	// Disabled, JSON.
	resp, body = get(t, srv.URL+"/upload", "application/json")
	var rej Rejection
	if err := json.Unmarshal([]byte(body), &rej); err != nil {
		t.Fatalf("JSON body %q: %v", body, err)
	}
	if resp.StatusCode != 503 || rej.Error != "disabled" || rej.Function != "upload" || rej.Mode != Disable ||
		rej.RetryAfterSeconds != 300 || !rej.Until.Equal(until) || !strings.Contains(rej.Message, "storage is being upgraded") {
		t.Fatalf("disabled JSON: %d %+v", resp.StatusCode, rej)
	}

	// Throttled: the first request is served (and says what is degraded), the second gets 429.
	resp, body = get(t, srv.URL+"/search", "")
	if resp.StatusCode != 200 || body != "served" || resp.Header.Get(HeaderDegraded) != "feed, search, upload" {
		t.Fatalf("throttled, first: %d %q header %q", resp.StatusCode, body, resp.Header.Get(HeaderDegraded))
	}
	resp, body = get(t, srv.URL+"/search", "application/problem+json;q=0.9, text/plain;q=0.5")
	if err := json.Unmarshal([]byte(body), &rej); err != nil {
		t.Fatalf("JSON body %q: %v", body, err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || rej.Error != "throttled" {
		t.Fatalf("throttled, second: %d retry %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), rej)
	}

	// Shed: 503 with Retry-After; a high-priority request still gets through at fraction 1? No: 1 drops all.
	resp, body = get(t, srv.URL+"/feed", "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "reduced capacity") {
		t.Fatalf("shed: %d %q", resp.StatusCode, body)
	}
	must(t, ctl.Set("feed", Policy{Mode: Shed, ShedFraction: 0.5}, "reduced capacity", until))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/feed", nil)
	req.Header.Set("X-Test-Priority", "high")
	for range 5 {
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("high priority at shed 0.5: %d, want served", r.StatusCode)
		}
	}

	// Critical, never degraded, still served and told what else is degraded.
	resp, _ = get(t, srv.URL+"/checkout", "")
	if resp.StatusCode != 200 || resp.Header.Get(HeaderDegraded) == "" {
		t.Fatalf("checkout: %d header %q", resp.StatusCode, resp.Header.Get(HeaderDegraded))
	}
}

func TestMiddlewareReleasesOnPanic(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now})
	must(t, ctl.Set("f", Policy{Mode: Throttle, MaxConcurrent: 1}, "", clk.Now().Add(time.Hour)))
	h := ctl.Middleware("f", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	if st := ctl.Status(); st[0].InFlight != 0 {
		t.Fatalf("in flight after a panicking handler = %d, want 0", st[0].InFlight)
	}
}

func TestStatusHandlerOverHTTP(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now, Functions: []string{"checkout", "search"}})
	srv := newTestServer(t, ctl)

	resp, body := get(t, srv.URL+"/status", "")
	var doc struct {
		Degraded  bool     `json:"degraded"`
		Time      string   `json:"time"`
		Functions []Status `json:"functions"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("status %q: %v", body, err)
	}
	if resp.StatusCode != 200 || doc.Degraded || len(doc.Functions) != 2 || doc.Functions[0].Mode != Normal {
		t.Fatalf("status before: %d %+v", resp.StatusCode, doc)
	}

	since := clk.Now()
	until := since.Add(10 * time.Minute)
	must(t, ctl.Set("search", Policy{Mode: Throttle, MaxConcurrent: 4}, "the data plane is being updated", until))
	_, body = get(t, srv.URL+"/status", "")
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("status %q: %v", body, err)
	}
	s := doc.Functions[1]
	if !doc.Degraded || s.Function != "search" || s.Mode != Throttle || !s.Since.Equal(since) || !s.Until.Equal(until) ||
		s.Reason != "the data plane is being updated" || s.Policy.MaxConcurrent != 4 || s.Limit != 4 {
		t.Fatalf("status during: %+v", doc)
	}
	if !strings.Contains(body, `"mode": "throttle"`) || !strings.Contains(body, `"until": "2026-11-26T22:10:00Z"`) {
		t.Fatalf("status JSON is not readable by people: %s", body)
	}

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/status", nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") == "" {
		t.Fatalf("POST status: %d allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
}

func TestWriteRejectionOfOtherError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteRejection(rec, httptest.NewRequest(http.MethodGet, "/", nil), errors.New("boom"))
	if rec.Code != 503 {
		t.Fatalf("status = %d", rec.Code)
	}
}

func TestPrefersJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                   false,
		"application/json":                   true,
		"APPLICATION/JSON; charset=utf-8":    true,
		"application/problem+json":           true,
		"text/plain, application/json":       false, // tie prefers text
		"text/plain;q=0.5, application/json": true,
		"application/json;q=0, text/html":    false,
		"*/*":                                false,
		"application/*, text/*;q=0.2":        true,
		"text/html":                          false,
		"application/json;q=abc":             false,
		"application/json;q=2":               false,
		"/json, application/":                false,
	} {
		if got := PrefersJSON(accept); got != want {
			t.Errorf("PrefersJSON(%q) = %v, want %v", accept, got, want)
		}
	}
}

func FuzzPrefersJSON(f *testing.F) {
	for _, s := range []string{"", "application/json", "text/plain;q=0.5, application/json", "*/*;q=0.1", "a/b;q=;;=,", "application/x+json;q=1e-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		got := PrefersJSON(accept)
		// Adding a better text/plain never makes JSON win.
		if PrefersJSON(accept+", text/plain;q=1") && !got {
			t.Fatalf("adding text/plain made JSON win for %q", accept)
		}
		for _, item := range strings.Split(accept, ",") {
			if mt, q, ok := parseAcceptItem(item); ok && (q < 0 || q > 1 || !strings.Contains(mt, "/")) {
				t.Fatalf("parseAcceptItem(%q) = %q, %v", item, mt, q)
			}
		}
	})
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"normal", "THROTTLE", " disable ", "shed", "", "mode(9)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("ParseMode(%q) error %v does not wrap ErrInvalidPolicy", s, err)
			}
			return
		}
		if !strings.EqualFold(strings.TrimSpace(s), m.String()) {
			t.Fatalf("ParseMode(%q) = %v", s, m)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHTTPUnderConcurrentModeChanges sends real HTTP requests while modes
// flip and the status handler is read; every answer must be well formed.
func TestHTTPUnderConcurrentModeChanges(t *testing.T) {
	ctl := MustNew(Options{})
	srv := newTestServer(t, ctl)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		policies := []Policy{{Mode: Disable}, {Mode: Throttle, MaxConcurrent: 1}, {Mode: Throttle, RatePerSecond: 50}, {Mode: Shed, ShedFraction: 0.5}}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := ctl.Set("search", policies[i%len(policies)], "flip", time.Now().Add(time.Minute)); err != nil {
				t.Error(err)
				return
			}
			if i%5 == 0 {
				if err := ctl.Clear("search"); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	seen := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 60 {
				resp, err := client.Get(srv.URL + "/search")
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
				case http.StatusTooManyRequests, http.StatusServiceUnavailable:
					if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "flip") {
						t.Errorf("rejection %d without Retry-After or reason: %q", resp.StatusCode, body)
					}
				default:
					t.Errorf("status %d %q", resp.StatusCode, body)
				}
				mu.Lock()
				seen[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for range 30 {
			resp, err := client.Get(srv.URL + "/status")
			if err != nil {
				t.Error(err)
				return
			}
			var doc struct{ Functions []Status }
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil {
				t.Errorf("status JSON: %v", err)
			}
		}
	})
	wg.Wait()
	close(stop)
	<-flipped
	t.Logf("answers by status: %v", seen)
	if seen[http.StatusOK] == 0 || seen[http.StatusOK] == 240 {
		t.Errorf("answers %v: want a mix of served and rejected while modes flip", seen)
	}
	if st := ctl.Status(); st[0].InFlight != 0 {
		t.Errorf("in flight after all requests = %d", st[0].InFlight)
	}
}
