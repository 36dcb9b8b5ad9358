package migrate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// With DedupPath, a request the Handler ran is not run again by a new
// Handler over the same file within the window — neither the captured
// request replayed byte for byte nor a retry of its id signed anew — and
// is answered with the first answer. Without it, the same replay runs
// twice (the check can fail).
func TestDedupSurvivesRestart(t *testing.T) {
	for _, durable := range []bool{true, false} {
		t.Run("durable="+strconv.FormatBool(durable), func(t *testing.T) {
			var runs atomic.Int32
			counter := func(_ context.Context, p []byte) ([]byte, error) {
				return []byte(strconv.Itoa(int(runs.Add(1)))), nil
			}
			opts := migrate.HandlerOptions{Key: testKey}
			if durable {
				opts.DedupPath = filepath.Join(t.TempDir(), "dedup.log")
			}
			ev := migrate.Event{ID: "inv-1", Source: "lease", Type: migrate.EventInvoke, Subject: "count", Data: []byte("x")}
			captured := signedRequest(t, ev, "")
			hdr := captured.Header.Clone()

			a, err := migrate.OpenHandler(opts)
			require.NoError(t, err)
			a.Register("count", counter, nil)
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, captured)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "1", rec.Body.String())
			require.NoError(t, a.Close())

			b, err := migrate.OpenHandler(opts)
			require.NoError(t, err)
			defer b.Close()
			b.Register("count", counter, nil)
			for _, replay := range []*http.Request{
				httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x")), // the captured request, byte for byte
				signedRequest(t, ev, ""), // a retry of its id, signed anew
			} {
				if replay.Header.Get("Ce-Id") == "" {
					replay.Header = hdr
				}
				rec = httptest.NewRecorder()
				b.ServeHTTP(rec, replay)
				require.Equal(t, http.StatusOK, rec.Code)
				if durable {
					require.Equal(t, "1", rec.Body.String(), "answered with the first answer")
				}
			}
			if durable {
				require.Equal(t, int32(1), runs.Load(), "ran once across the restart")
			} else {
				require.Equal(t, int32(2), runs.Load(), "without DedupPath the restart forgets")
			}
		})
	}
}

// A torn tail (a crash mid-append) loses only the torn record; an
// unreadable path is an error from OpenHandler, a panic from NewHandler.
func TestDedupLogTornTailAndErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dedup.log")
	var runs atomic.Int32
	counter := func(context.Context, []byte) ([]byte, error) { runs.Add(1); return nil, nil }
	h, err := migrate.OpenHandler(migrate.HandlerOptions{Key: testKey, DedupPath: path})
	require.NoError(t, err)
	h.Register("count", counter, nil)
	for _, id := range []string{"a", "b"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, signedRequest(t, migrate.Event{ID: id, Source: "s", Type: migrate.EventInvoke, Subject: "count"}, ""))
		require.Equal(t, http.StatusOK, rec.Code)
	}
	require.NoError(t, h.Close())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{0x40, 1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	h, err = migrate.OpenHandler(migrate.HandlerOptions{Key: testKey, DedupPath: path})
	require.NoError(t, err)
	defer h.Close()
	h.Register("count", counter, nil)
	for _, id := range []string{"a", "b", "c"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, signedRequest(t, migrate.Event{ID: id, Source: "s", Type: migrate.EventInvoke, Subject: "count"}, ""))
		require.Equal(t, http.StatusOK, rec.Code)
	}
	require.Equal(t, int32(3), runs.Load(), "a and b once each, c once")

	_, err = migrate.OpenHandler(migrate.HandlerOptions{Key: testKey, DedupPath: filepath.Join(path, "not-a-dir", "x")})
	require.ErrorContains(t, err, "migrate: dedup log")
	require.Panics(t, func() {
		migrate.NewHandler(migrate.HandlerOptions{Key: testKey, DedupPath: filepath.Join(path, "x", "y")})
	})
}
