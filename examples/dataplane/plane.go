package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/snapshot"
)

// plane is the data plane: a router over a route table, a session table
// (connection tracking: clients depend on their session's counter across
// requests), and two non-critical functions, an access log and usage
// reporting.
type plane struct {
	version  string
	routes   *snapshot.ShardedMap[string, string]  // prefix → next hop
	sessions *snapshot.ShardedMap[string, session] // session (or flow) id → packets seen
	usage    *migrate.MapState                     // client → requests (may run in another region)

	logMu  sync.Mutex
	logged int64 // access-log lines written
}

func newPlane(version string) (*plane, error) {
	routes, err := snapshot.NewShardedMap(snapshot.MapOptions[string, string]{})
	if err != nil {
		return nil, err
	}
	sessions, err := snapshot.NewShardedMap(snapshot.MapOptions[string, session]{Values: sessionCodec})
	if err != nil {
		return nil, err
	}
	p := &plane{version: version, routes: routes, sessions: sessions, usage: &migrate.MapState{}}
	for prefix, hop := range map[string]string{"10.0.0.0/8": "eth0", "10.1.0.0/16": "eth1", "192.168.0.0/16": "eth2", "0.0.0.0/0": "uplink"} {
		p.routes.Store(prefix, hop)
	}
	return p, nil
}

// route returns the next hop of the longest prefix holding dst.
func (p *plane) route(dst string) (string, bool) {
	addr, err := netip.ParseAddr(dst)
	if err != nil {
		return "", false
	}
	for bits := addr.BitLen(); bits >= 0; bits-- {
		prefix, err := addr.Prefix(bits)
		if err != nil {
			continue
		}
		if hop, ok := p.routes.Load(prefix.String()); ok {
			return hop, true
		}
	}
	return "", false
}

// session is one entry of the session table: the packets seen, and the
// idempotency key of the last request that counted one, so that a request
// retried after its answer was lost (HTTP clients retry a request that
// carries an Idempotency-Key when the connection closes before any answer,
// which a server closing an idle connection can cause just as a request
// arrives) is answered again instead of counted twice.
type session struct {
	N   int64
	Key string
}

// sessionCodec stores a session as a varint count and the key's bytes.
var sessionCodec = snapshot.Codec[session]{
	Append: func(dst []byte, s session) ([]byte, error) {
		return append(binary.AppendVarint(dst, s.N), s.Key...), nil
	},
	Decode: func(b []byte) (session, error) {
		n, k := binary.Varint(b)
		if k <= 0 {
			return session{}, errors.New("session: bad packet count")
		}
		return session{N: n, Key: string(b[k:])}, nil
	},
}

// track counts one more packet of session id and returns the count; a
// repeated key (a retry) is answered with the count it already got.
func (p *plane) track(id, key string) int64 {
	var n int64
	p.sessions.Update(id, func(old session, _ bool) (session, bool) {
		if key != "" && key == old.Key {
			n = old.N
			return old, true
		}
		n = old.N + 1
		return session{N: n, Key: key}, true
	})
	return n
}

// preload fills the session table with n background flows, as a
// connection-tracking table holds the flows of clients other than the
// benchmark's: the state a restart must save and load again.
func (p *plane) preload(n int) {
	for i := range n {
		p.sessions.Store(flowID(i), session{N: int64(i%1000 + 1)})
	}
}

func flowID(i int) string { return "flow-" + strconv.Itoa(i) }

// countUsage is the usage function: one more request of a client.
func (p *plane) countUsage(_ context.Context, client []byte) ([]byte, error) {
	return strconv.AppendInt(nil, p.usage.Add(string(client), 1), 10), nil
}

// handler serves the data plane. Critical: GET /route, POST and GET
// /session/{id}. Non-critical: POST /log, POST /usage, behind the
// degrade controller (and usage through the Orchestrator, which routes it
// to another region while it is moved).
func (p *plane) handler(degrader *degrade.Controller, invoke func(ctx context.Context, fn string, payload []byte) ([]byte, error)) http.Handler {
	mux := http.NewServeMux()
	// The critical handlers report their latency to the degrade
	// controller's guard, which tightens the adaptive throttles of the
	// non-critical ones when it rises during an update.
	mux.Handle("GET /route", degrader.CriticalMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hop, ok := p.route(r.URL.Query().Get("dst"))
		if !ok {
			http.Error(w, "no route", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, hop)
	})))
	mux.Handle("POST /session/{id}", degrader.CriticalMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, p.track(r.PathValue("id"), r.Header.Get("Idempotency-Key")))
	})))
	mux.HandleFunc("GET /session/{id}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := p.sessions.Load(r.PathValue("id"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, n.N)
	})
	mux.HandleFunc("GET /flows", func(w http.ResponseWriter, r *http.Request) {
		// How many of the preloaded background flows the table holds.
		want, _ := strconv.Atoi(r.URL.Query().Get("n"))
		kept := 0
		for i := range want {
			if _, ok := p.sessions.Load(flowID(i)); ok {
				kept++
			}
		}
		fmt.Fprint(w, kept)
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, p.version) })
	mux.Handle("POST /log", degrader.Middleware("accesslog", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.logMu.Lock()
		p.logged++
		p.logMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})))
	mux.Handle("POST /usage", degrader.Middleware("usage", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, _ := io.ReadAll(io.LimitReader(r.Body, 256))
		n, err := invoke(r.Context(), "usage", client)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write(n)
	})))
	return mux
}

// stateFile is what the plain restart and tableflip-alone ways write at
// stop and load at start: the whole critical state, in encoding/gob (the
// standard library's fastest encoding of a Go map; JSON took 2.9× as long
// for the benchmark's table).
type stateFile struct {
	Routes   map[string]string
	Sessions map[string]session
}

// save writes the critical state to path, durably.
func (p *plane) save(path string) error {
	st := stateFile{Routes: map[string]string{}, Sessions: make(map[string]session, p.sessions.Len())}
	p.routes.Range(func(k, v string) bool { st.Routes[k] = v; return true })
	p.sessions.Range(func(k string, v session) bool { st.Sessions[k] = v; return true })
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := gob.NewEncoder(w).Encode(st); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Clean(path))
}

// load reads what save wrote; a missing file is an empty start.
func (p *plane) load(path string) (bool, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	var st stateFile
	if err := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&st); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range st.Routes {
		p.routes.Store(k, v)
	}
	for k, v := range st.Sessions {
		p.sessions.Store(k, v)
	}
	return true, nil
}
