package migrate_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// stalledBody yields some bytes, then blocks (announcing it on stalled)
// until release is closed.
type stalledBody struct {
	first   []byte
	stalled chan<- struct{}
	release <-chan struct{}
	once    sync.Once
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	b.once.Do(func() { b.stalled <- struct{}{} })
	<-b.release
	return 0, io.ErrUnexpectedEOF
}

// Four unauthenticated requests claiming 64 MiB bodies (put-state, the
// largest kind) that then stall cost the handler what arrived, not what
// they claim: the memory allocated while they hang is measured and must
// stay under 1 MiB (it was 256 MiB).
func TestStalledLargeBodiesAllocateLittle(t *testing.T) {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	const conns = 4
	stalled := make(chan struct{}, conns)
	release := make(chan struct{})
	var wg sync.WaitGroup
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		body := &stalledBody{first: []byte(strings.Repeat("x", 1024)), stalled: stalled, release: release}
		req := httptest.NewRequest(http.MethodPost, "/", body)
		req.ContentLength = 64 << 20
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Type", migrate.EventPutState)
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), req) })
	}
	for range conns {
		<-stalled // every handler has read what arrived and waits for more
	}
	runtime.ReadMemStats(&after)
	close(release)
	wg.Wait()
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes while %d requests claiming 64 MiB each stalled", allocated, conns)
	require.Less(t, allocated, uint64(1<<20), "the handler allocates what is claimed, not what arrived")
}

// A body that stops arriving is cut off after BodyTimeout with 408 and
// the connection closed.
func TestSlowBodyTimesOut(t *testing.T) {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey, BodyTimeout: 50 * time.Millisecond})
	reg := startRegion(t, "127.0.0.26", h)
	c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(reg.url, "http://"), "/"))
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nCe-Specversion: 1.0\r\nContent-Length: 1000\r\n\r\nonly ten b")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	require.True(t, resp.Close, "the connection is closed")
}

// A request with both Content-Length and Transfer-Encoding (net/http
// reads it chunked and drops the length) gets its answer with the
// connection closed: a request smuggled after its chunked body is never
// parsed and served.
func TestContentLengthWithTransferEncodingClosesConnection(t *testing.T) {
	var served atomic.Int32
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	reg := startRegion(t, "127.0.0.27", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		h.ServeHTTP(w, r)
	}))
	c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(reg.url, "http://"), "/"))
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"3\r\nabc\r\n0\r\n\r\nPOST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.True(t, resp.Close, "the connection is closed after the answer")
	_, _ = io.Copy(io.Discard, resp.Body)
	_, err = http.ReadResponse(br, nil)
	require.Error(t, err, "no answer to a smuggled request")
	require.Equal(t, int32(1), served.Load())
}
