package updraft

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// FuzzDecodeJournal: whatever a journal record holds, decoding it either
// fails with ErrBadJournal or yields an entry that passes its own check and
// encodes back to a record that decodes to the same entry.
func FuzzDecodeJournal(f *testing.F) {
	f.Add([]byte(`{"version":1,"update":"u","heading":"forward","applyStarted":true,"snapshot":"s1","device":{"journaled":true,"type":"*sim.Device","record":"e30="},"lease":{"id":"l","functions":["stats"]},"degraded":[{"function":"reports","mode":2,"until":"2026-12-02T10:00:00Z"}],"done":["rollback"]}`))
	f.Add([]byte(`{"version":1,"update":"u","heading":"commit","validated":true}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeJournal(data)
		if err != nil {
			if !errors.Is(err, ErrBadJournal) {
				t.Fatalf("error does not wrap ErrBadJournal: %v", err)
			}
			return
		}
		if err := e.check(); err != nil {
			t.Fatalf("decoded entry fails its check: %v", err)
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := decodeJournal(again)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		b1, _ := json.Marshal(e2)
		if !bytes.Equal(again, b1) {
			t.Fatalf("round trip changed the entry:\n%s\n%s", again, b1)
		}
	})
}

// FuzzHandoverWire: the hand-over reader never panics on what a broken
// peer sends, and a stream's bytes reach the receiver only with a matching
// checksum.
func FuzzHandoverWire(f *testing.F) {
	var good bytes.Buffer
	w := &wire{w: bufio.NewWriter(&good)}
	_ = w.send(handoverMsg{Type: msgHello, PID: 1, Deltas: []string{"sessions"}})
	sw, _ := w.openStream(streamHeader{Source: "sessions", Mode: "full"})
	_, _ = sw.Write([]byte(`{"a":1}`))
	_ = sw.Close()
	f.Add(good.Bytes())
	f.Add([]byte{'D', 0, 0, 0, 1, 'x'})
	f.Add([]byte{'M', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &wire{r: bufio.NewReader(bytes.NewReader(data))}
		for i := 0; i < 64; i++ {
			m, h, err := r.next()
			if err != nil {
				return
			}
			if m != nil {
				continue
			}
			if h == nil {
				t.Fatal("next returned neither a message nor a stream")
			}
			if _, err := io.Copy(io.Discard, r.readStream()); err != nil {
				return
			}
		}
	})
}
