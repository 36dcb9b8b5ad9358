package migrate_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/updraft-dev/updraft/migrate"
)

func FuzzMapStateImport(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":-2}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"a":1.5}`))
	f.Add([]byte(`{"a":1} {"b":2}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s migrate.MapState
		s.Add("before", 1)
		if err := s.Import(context.Background(), bytes.NewReader(data)); err != nil {
			if s.Get("before") != 1 {
				t.Fatalf("a failed Import changed the state")
			}
			return
		}
		var out bytes.Buffer
		if err := s.Export(context.Background(), &out); err != nil {
			t.Fatal(err)
		}
		var again migrate.MapState
		if err := again.Import(context.Background(), &out); err != nil {
			t.Fatalf("Export output does not Import: %v", err)
		}
	})
}

// FuzzHandler sends arbitrary CloudEvents-ish requests to a Handler: it
// must answer every one with a valid status, never panic, and never run a
// function for an unsigned request.
func FuzzHandler(f *testing.F) {
	f.Add("1.0", "id", "src", migrate.EventInvoke, "count", "2026-01-01T00:00:00Z", "", []byte("x"))
	f.Add("1.0", "id", "src", migrate.EventGetState, "count", "", "v1=AAAA", []byte(nil))
	f.Add("", "", "", "", "", "", "", []byte("garbage"))
	// The signature with the time in it, as leases send it (no ce-time),
	// with a ce-time beside it, and malformed.
	f.Add("1.0", "id", "src", migrate.EventInvoke, "count", "", "t=1767225600000000000,v1=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", []byte("x"))
	f.Add("1.0", "id", "src", migrate.EventInvoke, "count", "2026-01-01T00:00:00Z", "t=1767225600000000000,v1=AAAA", []byte("x"))
	f.Add("1.0", "id", "src", migrate.EventPutState, "count", "", "t=-9223372036854775808,v1=", []byte(`{"a":1}`))
	f.Add("1.0", "id", "src", migrate.EventInvoke, "count", "", "t=99999999999999999999,v1=x", []byte("x"))
	f.Add("1.0", "id", "src", migrate.EventInvoke, "count", "", "t=,v1=,v1=", []byte(nil))
	f.Fuzz(func(t *testing.T, sv, id, src, typ, subj, tm, sig string, body []byte) {
		ran := false
		h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey, MaxPayloadBytes: 64, MaxStateBytes: 128})
		h.Register("count", func(context.Context, []byte) ([]byte, error) { ran = true; return nil, nil }, &migrate.MapState{})
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		for k, v := range map[string]string{"Ce-Specversion": sv, "Ce-Id": id, "Ce-Source": src, "Ce-Type": typ,
			"Ce-Subject": subj, "Ce-Time": tm, "Ce-Updraftsig": sig} {
			if v != "" {
				req.Header[k] = []string{v}
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("status %d", rec.Code)
		}
		if ran {
			t.Fatalf("a function ran for a request no one signed with the key")
		}
	})
}
