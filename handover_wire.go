package updraft

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// The hand-over channel between an old and a new process is a Unix stream
// socket. Everything on it is a frame: one kind byte, a 4-byte big-endian
// length, then that many bytes.
//
//	'M' a message, JSON (handoverMsg)
//	'S' the start of a state stream, JSON (streamHeader)
//	'D' a chunk of the stream's bytes (length > 0)
//	'E' the end of the stream: the CRC-32C of all its bytes (4 bytes)
//
// A stream's bytes are what a source's View writes (whole, or as a delta
// from an earlier view); the receiver hands them to the source as an
// io.Reader that ends at 'E' and fails if the checksum does not match.
const (
	frameMsg    = 'M'
	frameStream = 'S'
	frameData   = 'D'
	frameEnd    = 'E'

	// maxFrame bounds a frame's length: a peer that claims more is broken.
	maxFrame = 4 << 20
	// chunkBytes is the size of the data frames a stream is cut into.
	chunkBytes = 256 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// handoverMsg is a message of the hand-over protocol.
type handoverMsg struct {
	Type string `json:"type"` // hello, bulk, restored, go, live, commit, ack, rollback, returned, error
	PID  int    `json:"pid,omitempty"`
	// go: what the new process takes over.
	Update   string          `json:"update,omitempty"`
	Lease    *leaseEntry     `json:"lease,omitempty"`
	Degraded []degradedEntry `json:"degraded,omitempty"`
	// Restore tells the new process that the sender had no authoritative
	// state to give: it restores the snapshot instead.
	Restore  bool   `json:"restore,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	// Resume tells the new process to finish the update with Resume once
	// it is live (a hand-over during Resume, after the other process died).
	Resume bool `json:"resume,omitempty"`
	// Deltas names, in hello, the new process's sources that can apply
	// a delta.
	Deltas []string `json:"deltas,omitempty"`
	Err    string   `json:"err,omitempty"`
}

// Message types.
const (
	msgHello    = "hello"    // new → old: started, ready to receive state
	msgBulk     = "bulk"     // old → new: the bulk state is all sent
	msgRestored = "restored" // new → old: the bulk state is applied; ready for the switch
	msgGo       = "go"       // old → new: the state is all there; take over
	msgLive     = "live"     // new → old: serving
	msgCommit   = "commit"   // old → new: validated; finish the update
	msgAck      = "ack"      // new → old: the update is in its hands
	msgRollback = "rollback" // old → new: not validated; give the state back
	msgReturned = "returned" // new → old: state returned, the new process stops
	msgError    = "error"    // either way: giving up, with the reason
)

// streamHeader opens a state stream.
type streamHeader struct {
	Source string `json:"source"`
	// Mode is "full" (Source.Restore), "delta" (DeltaSource.ApplyDelta) or
	// "export" (migrate.State.Import of a function's remote state).
	Mode string `json:"mode"`
}

// wire is one end of the hand-over channel. Writes are serialised by mu;
// reads belong to one goroutine at a time.
type wire struct {
	conn net.Conn
	mu   sync.Mutex // guards w
	w    *bufio.Writer
	r    *bufio.Reader
}

func newWire(c net.Conn) *wire {
	return &wire{conn: c, w: bufio.NewWriterSize(c, 64<<10), r: bufio.NewReaderSize(c, 64<<10)}
}

func (w *wire) Close() error { return w.conn.Close() }

// peerExitedGrace is how long what the other process wrote before it
// exited stays readable once it is known to have exited.
const peerExitedGrace = 2 * time.Second

// peerExited is called when the other process has exited. Closing this
// end would discard what it sent and this process has not read yet (its
// last message, often): the reads go on until the channel's end, and a
// deadline ends them should the channel outlive the process (a descriptor
// leaked to a process of its own).
func (w *wire) peerExited() {
	_ = w.conn.SetReadDeadline(time.Now().Add(peerExitedGrace))
}

// writeFrame writes one frame; flush sends what is buffered.
func (w *wire) writeFrame(kind byte, payload []byte, flush bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := w.w.Write(payload); err != nil {
		return err
	}
	if flush {
		return w.w.Flush()
	}
	return nil
}

// send writes a message and flushes.
func (w *wire) send(m handoverMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := w.writeFrame(frameMsg, b, true); err != nil {
		return fmt.Errorf("updraft: hand-over: send %s: %w", m.Type, err)
	}
	return nil
}

// readFrame reads one frame.
func (w *wire) readFrame() (kind byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(w.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("updraft: hand-over: frame of %d bytes, limit %d", n, maxFrame)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(w.r, payload); err != nil {
		return 0, nil, fmt.Errorf("updraft: hand-over: frame cut short: %w", err)
	}
	return hdr[0], payload, nil
}

// errPeerGone is returned when the other process closed the channel: it
// exited, or crashed.
var errPeerGone = errors.New("updraft: hand-over: the other process is gone")

// next reads the next message or the header of the next stream.
func (w *wire) next() (msg *handoverMsg, stream *streamHeader, err error) {
	kind, payload, err := w.readFrame()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, nil, errPeerGone
	}
	if err != nil {
		return nil, nil, err
	}
	switch kind {
	case frameMsg:
		var m handoverMsg
		if err := json.Unmarshal(payload, &m); err != nil {
			return nil, nil, fmt.Errorf("updraft: hand-over: bad message: %w", err)
		}
		return &m, nil, nil
	case frameStream:
		var h streamHeader
		if err := json.Unmarshal(payload, &h); err != nil {
			return nil, nil, fmt.Errorf("updraft: hand-over: bad stream header: %w", err)
		}
		return nil, &h, nil
	}
	return nil, nil, fmt.Errorf("updraft: hand-over: unexpected frame %q", kind)
}

// expect reads the next message and checks its type; an error message
// from the peer becomes an error.
func (w *wire) expect(typ string) (*handoverMsg, error) {
	m, s, err := w.next()
	if err != nil {
		return nil, err
	}
	if s != nil {
		return nil, fmt.Errorf("updraft: hand-over: got state of %q, want message %q", s.Source, typ)
	}
	if m.Type == msgError {
		return nil, fmt.Errorf("updraft: hand-over: the other process gave up: %s", m.Err)
	}
	if m.Type != typ {
		return nil, fmt.Errorf("updraft: hand-over: got message %q, want %q", m.Type, typ)
	}
	return m, nil
}

// streamWriter cuts what is written into data frames; Close ends the
// stream with its checksum.
type streamWriter struct {
	w   *wire
	buf []byte
	crc uint32
	n   int64
}

func (w *wire) openStream(h streamHeader) (*streamWriter, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if err := w.writeFrame(frameStream, b, false); err != nil {
		return nil, err
	}
	return &streamWriter{w: w, buf: make([]byte, 0, chunkBytes)}, nil
}

func (s *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), chunkBytes-len(s.buf))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		if len(s.buf) == chunkBytes {
			if err := s.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (s *streamWriter) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	s.crc = crc32.Update(s.crc, castagnoli, s.buf)
	s.n += int64(len(s.buf))
	err := s.w.writeFrame(frameData, s.buf, false)
	s.buf = s.buf[:0]
	return err
}

// Close ends the stream and flushes it to the peer.
func (s *streamWriter) Close() error {
	if err := s.flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], s.crc)
	return s.w.writeFrame(frameEnd, sum[:], true)
}

// streamReader reads one stream's bytes, ending with io.EOF at its end
// frame once the checksum matched.
type streamReader struct {
	w    *wire
	cur  []byte
	crc  uint32
	done bool
}

func (w *wire) readStream() *streamReader { return &streamReader{w: w} }

func (s *streamReader) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if s.done {
			return 0, io.EOF
		}
		kind, payload, err := s.w.readFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, errPeerGone
			}
			return 0, err
		}
		switch kind {
		case frameData:
			s.crc = crc32.Update(s.crc, castagnoli, payload)
			s.cur = payload
		case frameEnd:
			if len(payload) != 4 || binary.BigEndian.Uint32(payload) != s.crc {
				return 0, errors.New("updraft: hand-over: state stream checksum mismatch")
			}
			s.done = true
		default:
			return 0, fmt.Errorf("updraft: hand-over: unexpected frame %q inside a state stream", kind)
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// drain reads the rest of the stream, so the channel stays in step after a
// receiver stopped early.
func (s *streamReader) drain() error {
	_, err := io.Copy(io.Discard, s)
	return err
}
