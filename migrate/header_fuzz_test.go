package migrate

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"unicode/utf8"
)

// FuzzHeaderValue: decoding never panics; what decodes re-encodes to a
// value that decodes to the same text; and every UTF-8 text survives
// encode → decode unchanged, with only printable ASCII other than '"' and
// '%' on the wire.
func FuzzHeaderValue(f *testing.F) {
	for _, s := range []string{"", "plain", "order-%41", "50%25%22off", "%", "%4", "%zz", "caf%C3%A9", "%FF", "a b\"c%d\x7f\u00e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, err := decodeHeaderValue("Ce-Id", s); err == nil {
			again, err := decodeHeaderValue("Ce-Id", encodeHeaderValue(dec))
			if err != nil || again != dec {
				t.Fatalf("decode(encode(%q)) = %q, %v", dec, again, err)
			}
		}
		if !utf8.ValidString(s) {
			return
		}
		enc := encodeHeaderValue(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c != '%' && needsEncoding(c) {
				t.Fatalf("encode(%q) = %q keeps byte %#x", s, enc, c)
			}
		}
		dec, err := decodeHeaderValue("Ce-Id", enc)
		if err != nil || dec != s {
			t.Fatalf("decode(encode(%q)) = %q, %v", s, dec, err)
		}
	})
}

// FuzzBinaryHeaders: binary-mode headers of any content are read without
// panicking, and an event read writes back to headers that read the same.
func FuzzBinaryHeaders(f *testing.F) {
	f.Add("1.0", "id-%41", "src", "t", "fn%25", "", "application/octet-stream")
	f.Add("1.0", "i", "s", "t", "", "2026-01-02T03:04:05Z", "")
	f.Add("", "", "", "", "", "", "application/cloudevents+xml")
	f.Fuzz(func(t *testing.T, sv, id, src, typ, subj, tm, ct string) {
		h := http.Header{}
		for k, v := range map[string]string{hdrSpecVersion: sv, hdrID: id, hdrSource: src, hdrType: typ, hdrSubject: subj, hdrTime: tm, hdrContentType: ct} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		var e Event
		if err := readWireEvent(context.Background(), h, []byte("data"), &e); err != nil || sv == "" {
			return
		}
		out := http.Header{}
		e.Sig = "" // the time travels in ce-time
		e.writeHeaders(out)
		var back Event
		if err := readWireEvent(context.Background(), out, e.Data, &back); err != nil {
			t.Fatalf("re-read: %v (headers %v)", err, out)
		}
		if back.ID != e.ID || back.Source != e.Source || back.Type != e.Type || back.Subject != e.Subject || !back.Time.Equal(e.Time) {
			t.Fatalf("round trip: %+v != %+v", back, e)
		}
	})
}

// FuzzDedupLog: any bytes decode without panicking, and the valid
// prefix re-encodes to exactly those bytes.
func FuzzDedupLog(f *testing.F) {
	var seed []byte
	seed = (&dedupRecord{kind: dedupResult, function: "f", id: "a", data: []byte("r")}).appendTo(seed)
	seed = (&dedupRecord{kind: dedupPut, function: "f", id: "p"}).appendTo(seed)
	f.Add(seed)
	f.Add(append(bytes.Clone(seed), 0x40, 1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, n := decodeDedupRecords(b)
		var again []byte
		for i := range recs {
			again = recs[i].appendTo(again)
		}
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoded %x, read %x", again, b[:n])
		}
	})
}
