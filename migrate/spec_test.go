package migrate

import (
	"os"
	"strings"
	"testing"
	"time"
)

// specKey is the key of SPEC.md's test vectors: the 32 ASCII bytes below.
var specKey = []byte("0123456789abcdef0123456789abcdef")

// specVectors are SPEC.md's MAC test vectors: each event and the
// signature this package computes for it.
var specVectors = []struct {
	name     string
	ev       Event
	withTime bool // the "t=<unix ns>,v1=" form; else "v1=" with ce-time
	want     string
}{
	{"invoke, signature carries the time",
		Event{Type: EventInvoke, ID: "inv-1", Source: "updraft/lease", Subject: "thumbnail",
			Time: time.Unix(0, 1767225600000000000), Gen: "g1", Data: []byte("hello")},
		true, "t=1767225600000000000,v1=nhT4NO6uPDPTF9f1zojuyktV_f9GOiNqfWCOayHYSw0"},
	{"function-error answer, time in ce-time",
		Event{Type: EventError, ID: "inv-1", Source: "updraft/handler", Req: "inv-1", FnErr: "true",
			Time: time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC), Data: []byte("boom")},
		false, "v1=Ctb8myzRR_WS7Pa6nmGxTuIc2waTt9p3142OCrRgfPI"},
	{"get-state, no data, a name with % and \"",
		Event{Type: EventGetState, ID: "get-7", Source: "updraft/lease", Subject: `50%"off`,
			Time: time.Unix(0, 1767225600000000001)},
		true, "t=1767225600000000001,v1=cZ9cWJKc_UZHSumlzG91-Yg8jc71B2yKawOSg2oxFdE"},
	{"invoke asking for an asynchronous reply",
		Event{Type: EventInvoke, ID: "inv-2", Source: "updraft/lease", Subject: "resize",
			Time: time.Unix(0, 1767225600000000002), ReplyTo: "https://host.example/replies", Data: []byte("img")},
		true, "t=1767225600000000002,v1=HLdLpNRGNuc6CFrXIOqCc-3eGZvqFJeUvdIp0fgPOyY"},
}

// The vectors hold, and SPEC.md lists each of them.
func TestSpecMACVectors(t *testing.T) {
	spec, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	s := newSigner(specKey)
	for _, v := range specVectors {
		var sig [sigMaxLen]byte
		got := string(s.signInto(&sig, &v.ev, v.withTime))
		if got != v.want {
			t.Errorf("%s: signature %s, SPEC.md says %s", v.name, got, v.want)
		}
		if !strings.Contains(string(spec), v.want) {
			t.Errorf("%s: SPEC.md does not list %s", v.name, v.want)
		}
		ev := v.ev
		ev.Sig = got
		if err := VerifyEvent(specKey, &ev, ev.Time, time.Second); err != nil {
			t.Errorf("%s: %v", v.name, err)
		}
	}
}
