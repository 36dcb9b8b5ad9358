package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJournalSpillsToDiskAndTrims(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(dir, 1<<20)
	require.NoError(t, err)
	j.memLimit = 100 // most payloads only on disk
	j.segBytes = 1000
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 40+i%7) }
	for i := range 100 {
		seq, err := j.append(payload(i))
		require.NoError(t, err)
		require.Equal(t, uint64(i+1), seq)
	}
	require.Equal(t, uint64(100), j.last())
	for i := range 100 {
		got, err := j.get(uint64(i + 1))
		require.NoError(t, err)
		require.Equal(t, payload(i), got, "entry %d", i+1)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	require.Greater(t, len(segs), 3, "segments rotate")

	require.NoError(t, j.trim(60))
	_, err = j.get(60)
	require.ErrorContains(t, err, "entry 60 is not buffered")
	got, err := j.get(61)
	require.NoError(t, err)
	require.Equal(t, payload(60), got)
	left, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	require.Less(t, len(left), len(segs), "fully trimmed segments are deleted")
	_, n := j.buffered()
	require.Equal(t, 40, n)

	require.NoError(t, j.trim(100))
	bytesLeft, n := j.buffered()
	require.Zero(t, n)
	require.Zero(t, bytesLeft)
	require.NoError(t, j.close())
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err))
}

func TestJournalBound(t *testing.T) {
	j, err := openJournal(t.TempDir(), 2*(recordHeader+4+10))
	require.NoError(t, err)
	defer j.close()
	p := bytes.Repeat([]byte("x"), 10)
	_, err = j.append(p)
	require.NoError(t, err)
	_, err = j.append(p)
	require.NoError(t, err)
	_, err = j.append(p)
	require.ErrorIs(t, err, ErrBufferFull)
	require.NoError(t, j.trim(1))
	_, err = j.append(p)
	require.NoError(t, err, "trimming frees room")
}

func TestJournalDetectsCorruption(t *testing.T) {
	j, err := openJournal(t.TempDir(), 1<<20)
	require.NoError(t, err)
	defer j.close()
	j.memLimit = 0
	_, err = j.append([]byte("hello"))
	require.NoError(t, err)
	seg := j.segs[0]
	_, err = seg.f.WriteAt([]byte("J"), recordHeader) // flip the payload on disk
	require.NoError(t, err)
	_, err = j.get(1)
	require.ErrorContains(t, err, "corrupt")
	require.ErrorContains(t, err, "entry 1")
}

func TestDecodeRecordRoundTrip(t *testing.T) {
	rec := appendRecord(nil, 42, []byte("payload"))
	seq, p, err := decodeRecord(rec)
	require.NoError(t, err)
	require.Equal(t, uint64(42), seq)
	require.Equal(t, "payload", string(p))
	_, _, err = decodeRecord(rec[:len(rec)-1])
	require.ErrorContains(t, err, "holds")
	_, _, err = decodeRecord(rec[:3])
	require.ErrorContains(t, err, "shorter than")
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, 1, []byte("x")))
	f.Add(appendRecord(nil, 1<<40, nil))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, p, err := decodeRecord(b)
		if err != nil {
			return
		}
		if again := appendRecord(nil, seq, p); !bytes.Equal(again, b) {
			t.Fatalf("decoded record does not re-encode to its input")
		}
	})
}

// FuzzReadWireEvent feeds arbitrary binary-mode headers and bodies to the
// decoder the Handler and the targets use: it must return an event or an
// error, never panic, and a decoded event keeps its required attributes.
func FuzzReadWireEvent(f *testing.F) {
	f.Add("1.0", "id-1", "src", EventInvoke, "fn", "2026-11-26T22:00:00.123456789Z", "v1=abc", []byte("payload"))
	f.Add("1.0", "", "src", EventInvoke, "fn", "", "", []byte(nil))
	f.Add("0.3", "id", "src", "t", "", "yesterday", "", []byte("x"))
	f.Add("", "id", "src", "t", "", "", "", []byte(`{"specversion":"1.0"}`))
	f.Add("", "", "", "", "", "", "", []byte(`{"specversion":"1.0","id":"a","source":"s","type":"t","time":"2026-12-03T06:00:00Z","datacontenttype":"text/plain","data":"x","updraftsig":"v1=abc"}`))
	f.Add("1.0", "id-2", "src", EventResult, "", "", "t=1795740453766965585,v1=m_bwmSODrpe9YKr-zkaaBRvTjIuBOpDeCrz5qFIcSpw", []byte("1"))
	f.Add("1.0", "id-3", "src", EventInvoke, "fn", "2026-11-26T22:00:00Z", "t=1795740453766965585,v1=", []byte(nil))
	f.Add("1.0", "id-4", "src", EventInvoke, "fn", "3000-01-01T00:00:00Z", "t=x,v1=y", []byte("z"))
	f.Fuzz(func(t *testing.T, sv, id, src, typ, subj, tm, sig string, body []byte) {
		h := http.Header{}
		for k, v := range map[string]string{hdrSpecVersion: sv, hdrID: id, hdrSource: src, hdrType: typ, hdrSubject: subj, hdrTime: tm, hdrSig: sig} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if sv == "" {
			h.Set(hdrContentType, "application/cloudevents+json")
		}
		ev := &Event{}
		if err := readWireEvent(context.Background(), h, body, ev); err != nil {
			return
		}
		if ev.ID == "" || ev.Source == "" || ev.Type == "" {
			t.Fatalf("decoded an event without id, source or type: %+v", ev)
		}
		s := newSigner([]byte("some-fuzzing-key"))
		at := ev.Time
		if ev.Sig != "" && s.verify(ev, at, time.Second) == nil {
			t.Fatalf("a signature nobody made with the key verifies: %q", ev.Sig)
		}
		// Signed here, in both forms: each verifies once the time is set.
		var v1 [sigMaxLen]byte
		for _, sig := range []string{s.sign(ev), string(s.signInto(&v1, ev, false))} {
			ev.Sig, ev.Time = sig, at
			if err := s.verify(ev, at, time.Second); at.IsZero() != (err != nil) {
				t.Fatalf("verify of a freshly signed event (%q): %v", sig, err)
			}
		}
	})
}

func TestDedupEvicts(t *testing.T) {
	d := newDedup(3, time.Minute)
	now := time.Now()
	for i := range 5 {
		_, first := d.claim(fmt.Sprint(i), now)
		require.True(t, first)
	}
	_, first := d.claim("4", now)
	require.False(t, first, "recent ids are remembered")
	_, first = d.claim("0", now)
	require.True(t, first, "beyond the count, the oldest are forgotten")
	_, first = d.claim("4", now.Add(2*time.Minute))
	require.True(t, first, "beyond the retention, too")
	require.True(t, errors.Is(fmt.Errorf("x: %w", ErrBufferFull), ErrBufferFull))
}
