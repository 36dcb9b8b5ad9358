package snapshot

import (
	"fmt"
	"sync"
)

// bufferPool keeps frame buffers between the reads of one [Engine], so a
// restore does not allocate (and zero) a fresh buffer for every chunk.
// Stored and raw buffers are kept apart: their sizes differ.
type bufferPool struct {
	stored, raw sync.Pool // of *[]byte
}

func (p *bufferPool) get(raw bool) []byte {
	if p == nil {
		return nil
	}
	pool := &p.stored
	if raw {
		pool = &p.raw
	}
	if b, ok := pool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func (p *bufferPool) put(b []byte, raw bool) {
	if p == nil || cap(b) == 0 {
		return
	}
	pool := &p.stored
	if raw {
		pool = &p.raw
	}
	pool.Put(&b)
}

// frameStream delivers a decoder's frames in order while decompressing
// several ahead on worker goroutines, so verification and restore use every
// core. Memory is bounded: at most 2*workers frames are in flight, and
// their buffers are recycled.
//
// The goroutine that calls next and peek owns the stream and must call
// close, which stops the reader and the workers and waits for them.
type frameStream struct {
	d      *decoder
	out    chan *frameJob // in stream order, to the owner
	work   chan *frameJob // to the workers
	stop   chan struct{}  // closed by close
	free   chan []byte    // recycled buffers, when pool is nil
	pool   *bufferPool    // recycled buffers; may be nil
	wg     sync.WaitGroup // the reader and the workers
	cur    *frameJob      // last job handed out; its buffers are in use
	peeked *frameJob
	closed bool
}

type frameJob struct {
	f      *frame
	err    error
	ready  chan struct{} // closed when f is opened (or err set)
	stored []byte
	raw    []byte
}

func (d *decoder) stream(workers int, pool *bufferPool) *frameStream {
	s := &frameStream{
		d:    d,
		pool: pool,
		out:  make(chan *frameJob, 2*workers),
		work: make(chan *frameJob, workers),
		stop: make(chan struct{}),
		free: make(chan []byte, 4*workers+4),
	}
	s.wg.Add(1 + workers)
	go s.read()
	for range workers {
		go s.open()
	}
	return s
}

// read runs the decoder's sequential half and hands frames to the workers.
func (s *frameStream) read() {
	defer s.wg.Done()
	defer close(s.work)
	defer close(s.out)
	for {
		f, stored, err := s.d.readFrame(s.buffer(false))
		job := &frameJob{f: f, err: err, stored: stored, ready: make(chan struct{})}
		if err != nil {
			close(job.ready)
		}
		select {
		case s.out <- job:
		case <-s.stop:
			return
		}
		if err != nil {
			return
		}
		select {
		case s.work <- job:
		case <-s.stop:
			return
		}
		if f.kind == kindEnd {
			return
		}
	}
}

func (s *frameStream) open() {
	defer s.wg.Done()
	for job := range s.work {
		job.raw = s.buffer(true)
		job.err = s.d.openFrame(job.f, &job.raw)
		close(job.ready)
	}
}

func (s *frameStream) buffer(raw bool) []byte {
	if s.pool != nil {
		return s.pool.get(raw)
	}
	select {
	case b := <-s.free:
		return b[:0]
	default:
		return nil
	}
}

func (s *frameStream) recycle(job *frameJob) {
	if s.pool != nil {
		s.pool.put(job.stored, false)
		s.pool.put(job.raw, true)
		return
	}
	for _, b := range [][]byte{job.stored, job.raw} {
		if cap(b) == 0 {
			continue
		}
		select {
		case s.free <- b:
		default:
		}
	}
}

// fetch returns the next job, once opened; the previous one's buffers are
// recycled.
func (s *frameStream) fetch() (*frame, error) {
	if s.cur != nil {
		s.recycle(s.cur)
		s.cur = nil
	}
	job, ok := <-s.out
	if !ok {
		return nil, fmt.Errorf("snapshot %s: read past the end of the stream: %w", s.d.name, ErrCorrupt)
	}
	<-job.ready
	if job.err != nil {
		return nil, job.err
	}
	s.cur = job
	return job.f, nil
}

// keepRaw hands the caller the buffer that the raw bytes of f, the frame
// next returned last, lie in: they stay valid after the following call to
// next or peek. The frame's other buffer is recycled.
func (s *frameStream) keepRaw(f *frame) {
	s.giveBack(othersThanRaw(s.lend(), rawInStored(f)))
}

// rawInStored reports whether f's raw bytes lie in the buffer it was read
// into (it was not compressed; opening a seal works in place) rather than
// in a buffer of their own.
func rawInStored(f *frame) bool { return f.flags&(frameFlagS2|frameFlagZstd) == 0 }

// othersThanRaw returns a frame's buffers (as lend returns them) without
// the one its raw bytes lie in.
func othersThanRaw(bufs [2][]byte, inStored bool) [2][]byte {
	if inStored {
		bufs[0] = nil
	} else {
		bufs[1] = nil
	}
	return bufs
}

// lend hands the buffers of the frame next returned last to the caller,
// who hands them back (giveBack) once it is done with the frame.
func (s *frameStream) lend() (bufs [2][]byte) {
	if s.cur != nil {
		bufs = [2][]byte{s.cur.stored, s.cur.raw}
		s.cur.stored, s.cur.raw = nil, nil
	}
	return bufs
}

// giveBack recycles buffers lend returned; any goroutine may call it, even
// after close.
func (s *frameStream) giveBack(bufs [2][]byte) {
	s.recycle(&frameJob{stored: bufs[0], raw: bufs[1]})
}

// next returns the next frame; its raw bytes are valid until the following
// call to next or peek (or for good after keepRaw).
func (s *frameStream) next() (*frame, error) {
	if s.peeked != nil {
		f := s.peeked.f
		s.peeked = nil
		return f, nil
	}
	return s.fetch()
}

// peek returns the next frame without consuming it.
func (s *frameStream) peek() (*frame, error) {
	if s.peeked == nil {
		f, err := s.fetch()
		if err != nil {
			return nil, err
		}
		s.peeked = s.cur
		_ = f
	}
	return s.peeked.f, nil
}

// close stops the stream's goroutines and waits for them.
func (s *frameStream) close() {
	if s.closed {
		return
	}
	s.closed = true
	close(s.stop)
	s.wg.Wait()
}
