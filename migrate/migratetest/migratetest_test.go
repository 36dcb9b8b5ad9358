package migratetest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/migrate/migratetest"
)

var key = []byte("migratetest-key-0123456789abcdef")

func counter() migrate.Func {
	var mu sync.Mutex
	n := 0
	return func(context.Context, []byte) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		return []byte(strconv.Itoa(n)), nil
	}
}

// migrate.Handler conforms.
func TestHandlerConforms(t *testing.T) {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: key})
	h.Register("count", counter(), nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	require.NoError(t, migratetest.TestReceiver(context.Background(), srv.URL, migratetest.Options{Key: key, Counter: "count"}))
}

// bareReceiver is a receiver written from SPEC.md with net/http alone;
// dedup chooses whether it remembers answers by id.
func bareReceiver(dedup bool) http.Handler {
	run := counter()
	var mu sync.Mutex
	seen := map[string]string{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents") {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		body, _ := io.ReadAll(r.Body)
		get := func(k string) string {
			v := r.Header.Get(k)
			if s, err := decodePct(v); err == nil {
				return s
			}
			return v
		}
		ev := migrate.Event{ID: get("Ce-Id"), Source: get("Ce-Source"), Type: get("Ce-Type"), Subject: get("Ce-Subject"),
			Gen: get("Ce-Updraftgen"), Sig: get("Ce-Updraftsig"), Data: body}
		ev.Time, _ = time.Parse(time.RFC3339Nano, r.Header.Get("Ce-Time"))
		if err := migrate.VerifyEvent(key, &ev, time.Now(), time.Minute); err != nil {
			w.Header().Set("WWW-Authenticate", migrate.WWWAuthenticate)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var out string
		switch {
		case ev.Type == migrate.EventProbe:
		case ev.Subject != "count":
			w.WriteHeader(http.StatusNotFound)
			return
		default:
			mu.Lock()
			prev, ok := seen[ev.ID]
			mu.Unlock()
			if ok && dedup {
				out = prev
			} else {
				res, _ := run(r.Context(), body)
				out = string(res)
				mu.Lock()
				seen[ev.ID] = out
				mu.Unlock()
			}
		}
		ans := migrate.Event{ID: ev.ID, Source: "bare", Type: migrate.EventResult, Time: time.Now(), Data: []byte(out)}
		_ = migrate.SignEvent(key, &ans)
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": ans.ID, "Ce-Source": ans.Source, "Ce-Type": ans.Type,
			"Ce-Time": ans.Time.UTC().Format(time.RFC3339Nano), "Ce-Updraftsig": ans.Sig} {
			w.Header().Set(k, v)
		}
		_, _ = w.Write(ans.Data)
	})
}

func decodePct(v string) (string, error) {
	var b []byte
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			n, err := strconv.ParseUint(v[i+1:i+3], 16, 8)
			if err != nil {
				return "", err
			}
			b = append(b, byte(n))
			i += 2
			continue
		}
		b = append(b, v[i])
	}
	return string(b), nil
}

// A receiver written from SPEC.md alone conforms; the same receiver
// without deduplication fails, and the failure says why.
func TestSuiteCatchesMissingDedup(t *testing.T) {
	good := httptest.NewServer(bareReceiver(true))
	defer good.Close()
	require.NoError(t, migratetest.TestReceiver(context.Background(), good.URL, migratetest.Options{Key: key, Counter: "count"}))

	bad := httptest.NewServer(bareReceiver(false))
	defer bad.Close()
	err := migratetest.TestReceiver(context.Background(), bad.URL, migratetest.Options{Key: key, Counter: "count"})
	require.Error(t, err)
	require.ErrorContains(t, err, "dedup: a repeat of id")
	require.ErrorContains(t, err, "ran it twice")
}
