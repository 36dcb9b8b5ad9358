package main

import (
	"context"
	"encoding/json"
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
	routes   *snapshot.ShardedMap[string, string] // prefix → next hop
	sessions *snapshot.ShardedMap[string, int64]  // session id → packets seen
	usage    *migrate.MapState                    // client → requests (may run in another region)

	logMu  sync.Mutex
	logged int64 // access-log lines written
}

func newPlane(version string) (*plane, error) {
	routes, err := snapshot.NewShardedMap(snapshot.MapOptions[string, string]{})
	if err != nil {
		return nil, err
	}
	sessions, err := snapshot.NewShardedMap(snapshot.MapOptions[string, int64]{})
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

// track counts one more packet of session id and returns the count.
func (p *plane) track(id string) int64 {
	var n int64
	p.sessions.Update(id, func(old int64, _ bool) (int64, bool) {
		n = old + 1
		return n, true
	})
	return n
}

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
	mux.HandleFunc("GET /route", func(w http.ResponseWriter, r *http.Request) {
		hop, ok := p.route(r.URL.Query().Get("dst"))
		if !ok {
			http.Error(w, "no route", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, hop)
	})
	mux.HandleFunc("POST /session/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, p.track(r.PathValue("id")))
	})
	mux.HandleFunc("GET /session/{id}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := p.sessions.Load(r.PathValue("id"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, n)
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
// stop and load at start: the whole critical state as JSON.
type stateFile struct {
	Routes   map[string]string `json:"routes"`
	Sessions map[string]int64  `json:"sessions"`
}

// save writes the critical state to path, durably.
func (p *plane) save(path string) error {
	st := stateFile{Routes: map[string]string{}, Sessions: map[string]int64{}}
	p.routes.Range(func(k, v string) bool { st.Routes[k] = v; return true })
	p.sessions.Range(func(k string, v int64) bool { st.Sessions[k] = v; return true })
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
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
func (p *plane) load(path string) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range st.Routes {
		p.routes.Store(k, v)
	}
	for k, v := range st.Sessions {
		p.sessions.Store(k, v)
	}
	return nil
}
