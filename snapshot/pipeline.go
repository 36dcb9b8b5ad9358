package snapshot

import (
	"context"
	"crypto/cipher"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/s2"
)

// pipeline compresses and seals chunks on several goroutines and writes the
// frames to the sink in submission order. Memory is bounded: at most
// 2*workers chunks are in flight, and buffers are recycled, through the
// Engine's pool, from one snapshot to the next.
//
// The goroutine that calls submit owns the pipeline; it must end with finish
// or close, which stop the workers and the writer goroutine.
type pipeline struct {
	ctx  context.Context
	sink io.Writer
	comp *compressor
	aead cipher.AEAD
	seq  uint32
	// bufBytes is the capacity of every buffer, so any can be reused for
	// a raw chunk or a frame.
	bufBytes int
	jobs     chan *chunkJob // to the workers
	order    chan *chunkJob // to the writer, in submission order
	pool     *sync.Pool     // recycled buffers (*[]byte of bufBytes capacity)
	done     chan struct{}  // closed when the writer has returned
	wg       sync.WaitGroup // the workers

	// Written by the writer goroutine, read by the owner after done.
	records []chunkRecord
	err     error
	// failed is closed by the writer on its first error so submit stops early.
	failed   chan struct{}
	finished bool
	// inline: submit seals each chunk itself (one worker).
	inline bool
	// pace, when set, paces the submitting goroutine (inline only).
	pace *pacer
}

type chunkJob struct {
	source uint16
	seq    uint32
	raw    []byte
	out    []byte
	info   ChunkInfo
	ready  chan struct{}
}

type chunkRecord struct {
	source uint16
	info   ChunkInfo
}

func newPipeline(ctx context.Context, sink io.Writer, comp *compressor, aead cipher.AEAD, workers, chunkBytes int, pool *sync.Pool) *pipeline {
	p := &pipeline{
		ctx: ctx, sink: sink, comp: comp, aead: aead, pool: pool,
		// Room for a chunk, or a frame holding one: the codecs' worst-case
		// growth, the frame header, the AEAD tag and the CRC.
		bufBytes: frameHeaderSize + max(chunkBytes+chunkBytes/128+1024, s2.MaxEncodedLen(chunkBytes)) + 64,
		jobs:     make(chan *chunkJob, workers),
		order:    make(chan *chunkJob, 2*workers),
		done:     make(chan struct{}),
		failed:   make(chan struct{}),
	}
	// One worker is the goroutine that submits: a chunk is sealed where
	// it was encoded, and the snapshot takes one core, not two.
	if p.inline = workers == 1; !p.inline {
		p.wg.Add(workers)
		for range workers {
			go p.work()
		}
	}
	go p.write()
	return p
}

func (p *pipeline) work() {
	defer p.wg.Done()
	for j := range p.jobs {
		j.out, j.info = sealFrame(p.buffer(), kindData, j.source, j.seq, j.raw, p.comp, p.aead)
		close(j.ready)
	}
}

func (p *pipeline) write() {
	defer close(p.done)
	for j := range p.order {
		<-j.ready
		if p.err == nil {
			if err := p.ctx.Err(); err != nil {
				p.fail(fmt.Errorf("write chunk %d: %w", j.seq, err))
			} else if _, err := p.sink.Write(j.out); err != nil {
				p.fail(fmt.Errorf("write chunk %d: %w", j.seq, err))
			} else {
				p.records = append(p.records, chunkRecord{j.source, j.info})
			}
		}
		p.recycle(j.raw)
		p.recycle(j.out)
	}
}

func (p *pipeline) fail(err error) {
	p.err = err
	close(p.failed)
}

// buffer returns an empty buffer of p.bufBytes capacity, recycled when
// one is free.
func (p *pipeline) buffer() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok && cap(*b) >= p.bufBytes {
		return (*b)[:0]
	}
	return make([]byte, 0, p.bufBytes)
}

func (p *pipeline) recycle(b []byte) {
	if cap(b) < p.bufBytes {
		return // grown elsewhere or too small: let the GC have it
	}
	p.pool.Put(&b)
}

// submit queues raw as the next chunk of source; the pipeline owns raw.
func (p *pipeline) submit(source uint16, raw []byte) error {
	j := &chunkJob{source: source, seq: p.seq, raw: raw, ready: make(chan struct{})}
	select {
	case <-p.failed: // p.err is set before failed is closed
		return fmt.Errorf("chunk %d not written: %w", p.seq, p.err)
	case <-p.ctx.Done():
		return fmt.Errorf("chunk %d: %w", p.seq, p.ctx.Err())
	case p.order <- j:
	}
	p.seq++
	if !p.inline {
		p.jobs <- j // a worker always takes it: workers never block
		return nil
	}
	j.out, j.info = sealFrame(p.buffer(), kindData, j.source, j.seq, j.raw, p.comp, p.aead)
	close(j.ready)
	if p.pace != nil {
		if err := p.pace.rest(p.ctx); err != nil {
			return fmt.Errorf("chunk %d: %w", j.seq, err)
		}
	}
	return nil
}

// finish waits for every chunk to be written and returns their records in
// order.
func (p *pipeline) finish() ([]chunkRecord, error) {
	if err := p.close(); err != nil {
		return nil, err
	}
	return p.records, nil
}

// close stops the workers and the writer and returns the first write error.
func (p *pipeline) close() error {
	if !p.finished {
		p.finished = true
		close(p.jobs)
		close(p.order)
		p.wg.Wait()
		<-p.done
	}
	return p.err
}
