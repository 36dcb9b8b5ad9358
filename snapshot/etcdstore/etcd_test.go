package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/updraft-dev/updraft/snapshot"
)

// cluster is a real etcd cluster started in this process on loopback.
type cluster struct {
	members   []*embed.Etcd
	cfgs      []*embed.Config
	endpoints []string
}

// freeURL returns a URL whose address was free a moment ago. Each is on a
// loopback address of its own (127.0.0.0/8 is all local): a port picked by
// the kernel and then released can be taken, before etcd binds it, as the
// source port of another connection from 127.0.0.1 (CI once failed with
// "bind: address already in use" while other packages' tests ran); on an
// address nothing else uses, it cannot.
func freeURL(t testing.TB) url.URL {
	t.Helper()
	host := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// startCluster starts n members and waits until they serve.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := &cluster{}
	peers := make([]url.URL, n)
	clients := make([]url.URL, n)
	var initial []string
	for i := range n {
		peers[i], clients[i] = freeURL(t), freeURL(t)
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i].String()))
		c.endpoints = append(c.endpoints, clients[i].String())
	}
	for i := range n {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = t.TempDir()
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peers[i]}, []url.URL{peers[i]}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clients[i]}, []url.URL{clients[i]}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "updraft-test"
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{filepath.Join(cfg.Dir, "etcd.log")}
		e, err := embed.StartEtcd(cfg)
		require.NoError(t, err, "start etcd member %d", i)
		c.members = append(c.members, e)
		c.cfgs = append(c.cfgs, cfg)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			if m != nil {
				m.Close()
			}
		}
	})
	c.waitReady(t)
	return c
}

func (c *cluster) waitReady(t testing.TB) {
	t.Helper()
	for i, m := range c.members {
		select {
		case <-m.Server.ReadyNotify():
		case err := <-m.Err():
			t.Fatalf("etcd member %d failed: %v", i, err)
		case <-time.After(60 * time.Second):
			t.Fatalf("etcd member %d not ready after 60s", i)
		}
	}
}

func (c *cluster) client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// stopLeader stops the member that leads and returns its index.
func (c *cluster) stopLeader(t testing.TB) int {
	for i, m := range c.members {
		if m != nil && m.Server.Leader() == m.Server.MemberID() {
			m.Close()
			c.members[i] = nil
			return i
		}
	}
	t.Fatal("no member leads")
	return -1
}

func newState(t testing.TB, entries, valueBytes int) *snapshot.Map[uint64, []byte] {
	m, err := snapshot.NewMap(snapshot.MapOptions[uint64, []byte]{})
	require.NoError(t, err)
	for i := range entries {
		v := []byte(strings.Repeat(fmt.Sprintf("%08d", i), valueBytes/8))
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		for j := 0; j < len(v); j += 2 { // half random: compresses about 2:1
			v[j] = byte(rng.Uint32())
		}
		m.Store(uint64(i), v)
	}
	return m
}

func contents(m *snapshot.Map[uint64, []byte]) map[uint64]string {
	out := map[uint64]string{}
	m.Range(func(k uint64, v []byte) bool { out[k] = string(v); return true })
	return out
}

// TestSingleMember runs the store's whole contract against one real member.
func TestSingleMember(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 1)
	cli := c.client(t)
	store, err := New(ctx, cli, Options{ChunkBytes: 64 << 10, Retain: 2, Prefix: "t1/"})
	require.NoError(t, err)

	t.Run("engine round trip", func(t *testing.T) {
		src := newState(t, 3000, 512) // ~1.5 MB raw, many chunks of 64 KiB
		eng, err := snapshot.New(store, map[string]snapshot.Source{"routes": src}, snapshot.Options{Key: make([]byte, 32), CompressionLevel: 1, ChunkBytes: 32 << 10})
		require.NoError(t, err)
		m, err := eng.Snapshot(ctx)
		require.NoError(t, err)
		dst := newState(t, 0, 0)
		eng2, err := snapshot.New(store, map[string]snapshot.Source{"routes": dst}, snapshot.Options{Key: make([]byte, 32)})
		require.NoError(t, err)
		require.NoError(t, eng2.Restore(ctx, m))
		require.Equal(t, contents(src), contents(dst))
	})

	t.Run("partial snapshot is invisible", func(t *testing.T) {
		w, err := store.Create(ctx, "partial")
		require.NoError(t, err)
		_, err = w.Write(make([]byte, 200<<10)) // three chunks reach etcd
		require.NoError(t, err)
		ids, err := store.List(ctx)
		require.NoError(t, err)
		require.NotContains(t, ids, "partial")
		_, err = store.Open(ctx, "partial")
		require.ErrorIs(t, err, snapshot.ErrNotFound)
		_, err = store.Create(ctx, "partial")
		require.ErrorContains(t, err, "already exists")
		require.NoError(t, w.Cancel())
		requireNoKeys(t, cli, "t1/c/partial/")
		requireNoKeys(t, cli, "t1/p/partial")
	})

	t.Run("writer dies, lease expires, chunks are swept", func(t *testing.T) {
		w, err := store.Create(ctx, "dead")
		require.NoError(t, err)
		_, err = w.Write(make([]byte, 150<<10))
		require.NoError(t, err)
		// The writer dies: its keep-alive stops and its lease ends.
		s := w.(*sink)
		s.stopKeepAlive()
		_, err = cli.Revoke(ctx, s.lease)
		require.NoError(t, err)
		require.NoError(t, store.Sweep(ctx))
		requireNoKeys(t, cli, "t1/c/dead/")
		// Had it come back, its commit would have been refused.
		err = w.Close()
		require.ErrorContains(t, err, "pending marker is gone")
		ids, _ := store.List(ctx)
		require.NotContains(t, ids, "dead")
	})

	t.Run("list, open, delete, retention", func(t *testing.T) {
		for _, id := range []string{"a1", "a2", "a3"} {
			w, err := store.Create(ctx, id)
			require.NoError(t, err)
			_, err = io.WriteString(w, strings.Repeat(id, 50000))
			require.NoError(t, err)
			require.NoError(t, w.Close())
		}
		ids, err := store.List(ctx)
		require.NoError(t, err)
		require.Len(t, ids, 2, "retention keeps 2: %v", ids)
		require.Equal(t, []string{"a2", "a3"}, ids[len(ids)-2:])
		r, err := store.Open(ctx, "a3")
		require.NoError(t, err)
		b, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Equal(t, strings.Repeat("a3", 50000), string(b))
		require.NoError(t, store.Delete(ctx, "a3"))
		require.ErrorIs(t, store.Delete(ctx, "a3"), snapshot.ErrNotFound)
		requireNoKeys(t, cli, "t1/c/a3/")
	})

	t.Run("damaged chunk is detected", func(t *testing.T) {
		w, err := store.Create(ctx, "dmg")
		require.NoError(t, err)
		_, err = io.WriteString(w, strings.Repeat("x", 100<<10))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		_, err = cli.Put(ctx, "t1/c/dmg/00000001", strings.Repeat("y", 36<<10))
		require.NoError(t, err)
		r, err := store.Open(ctx, "dmg")
		require.NoError(t, err)
		_, err = io.ReadAll(r)
		require.NoError(t, err, "reads at the manifest's revision see the original chunk")
		// A chunk deleted and compacted away is reported, not read short.
		_, err = cli.Delete(ctx, "t1/c/dmg/00000001")
		require.NoError(t, err)
		resp, err := cli.Get(ctx, "x")
		require.NoError(t, err)
		_, err = cli.Compact(ctx, resp.Header.Revision)
		require.NoError(t, err)
		r, err = store.Open(ctx, "dmg")
		require.NoError(t, err)
		_, err = io.ReadAll(r)
		require.Error(t, err)
		require.ErrorContains(t, err, `read "dmg" chunk`)
	})

	t.Run("bad options", func(t *testing.T) {
		_, err := New(ctx, nil, Options{})
		require.ErrorContains(t, err, "client is nil")
		_, err = New(ctx, cli, Options{ChunkBytes: 2 << 20})
		require.ErrorContains(t, err, "etcd refuses requests over 1.5 MiB")
		_, err = New(ctx, cli, Options{LeaseTTL: time.Second})
		require.ErrorContains(t, err, "LeaseTTL 1s is below 5s")
		_, err = New(ctx, cli, Options{Retain: -3})
		require.ErrorContains(t, err, "Retain -3")
	})
}

func requireNoKeys(t testing.TB, cli *clientv3.Client, prefix string) {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count, "keys remain under %q", prefix)
}

func TestUnreachableClusterFailsUpFront(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{freeHost(t)}, DialTimeout: time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = New(ctx, cli, Options{})
	require.ErrorContains(t, err, "cluster does not answer")
}

// leaderKillingStore stops the cluster's leader once a snapshot has
// written some bytes, from inside the writer's own Write call.
type leaderKillingStore struct {
	*Store
	t       testing.TB
	c       *cluster
	after   int
	mu      sync.Mutex
	ids     []string
	stopped int
}

func (s *leaderKillingStore) Create(ctx context.Context, id string) (snapshot.Sink, error) {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	w, err := s.Store.Create(ctx, id)
	if err != nil {
		return nil, err
	}
	return &killingSink{Sink: w, s: s}, nil
}

type killingSink struct {
	snapshot.Sink
	s *leaderKillingStore
	n int
}

func (w *killingSink) Write(p []byte) (int, error) {
	n, err := w.Sink.Write(p)
	w.n += n
	if w.n >= w.s.after && w.s.stopped < 0 {
		w.s.stopped = w.s.c.stopLeader(w.s.t)
	}
	return n, err
}

// TestLeaderStoppedMidWrite writes a snapshot to a 3-member cluster and stops
// the leader half way; afterwards the snapshot is complete and restorable,
// or absent — never partial.
func TestLeaderStoppedMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-member etcd cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startCluster(t, 3)
	cli := c.client(t)
	base, err := New(ctx, cli, Options{ChunkBytes: 128 << 10, LeaseTTL: 5 * time.Second, Prefix: "ha/"})
	require.NoError(t, err)
	store := &leaderKillingStore{Store: base, t: t, c: c, after: 2 << 20, stopped: -1}
	src := newState(t, 8000, 1024) // ~8 MB raw
	eng, err := snapshot.New(store, map[string]snapshot.Source{"routes": src}, snapshot.Options{ChunkBytes: 256 << 10, AppVersion: "1"})
	require.NoError(t, err)

	m, snapErr := eng.Snapshot(ctx)
	require.GreaterOrEqual(t, store.stopped, 0, "the leader was never stopped: the write was too short")
	require.Len(t, store.ids, 1)
	id := store.ids[0]
	t.Logf("leader m%d stopped mid-write; Snapshot returned %v", store.stopped, snapErr)

	// Look with a fresh client at the surviving members.
	var alive []string
	for i, mem := range c.members {
		if mem != nil {
			alive = append(alive, c.endpoints[i])
		}
	}
	cli2, err := clientv3.New(clientv3.Config{Endpoints: alive, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli2.Close()
	after, err := New(ctx, cli2, Options{Prefix: "ha/"})
	require.NoError(t, err)
	ids, err := after.List(ctx)
	require.NoError(t, err)
	dst := newState(t, 0, 0)
	eng2, err := snapshot.New(after, map[string]snapshot.Source{"routes": dst}, snapshot.Options{AppVersion: "1"})
	require.NoError(t, err)
	if snapErr == nil {
		require.Equal(t, id, m.ID)
		require.Equal(t, []string{id}, ids, "a committed snapshot must be listed")
		require.NoError(t, eng2.Restore(ctx, m), "a committed snapshot must restore")
		require.Equal(t, contents(src), contents(dst))
	} else {
		require.Empty(t, ids, "a failed snapshot must not be listed")
		_, err = after.Open(ctx, id)
		require.True(t, errors.Is(err, snapshot.ErrNotFound), "a failed snapshot must not open: %v", err)
		require.Zero(t, dst.Len())
	}

	// The failing branch, forced: on the surviving two members, a writer
	// gives up half way (its context ends). Nothing becomes visible and its
	// chunks are discarded.
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	quitting := &cancellingStore{Store: after, after: 1 << 20, cancel: stopWriter}
	eng3, err := snapshot.New(quitting, map[string]snapshot.Source{"routes": src}, snapshot.Options{ChunkBytes: 256 << 10, AppVersion: "1"})
	require.NoError(t, err)
	_, err = eng3.Snapshot(wctx)
	require.ErrorIs(t, err, context.Canceled)
	require.NotEmpty(t, quitting.id)
	ids2, err := after.List(ctx)
	require.NoError(t, err)
	require.Equal(t, ids, ids2, "the abandoned snapshot is listed")
	_, err = after.Open(ctx, quitting.id)
	require.ErrorIs(t, err, snapshot.ErrNotFound)
	requireNoKeys(t, cli2, "ha/c/"+quitting.id+"/")
	requireNoKeys(t, cli2, "ha/p/"+quitting.id)
}

// cancellingStore cancels the writer's context once a sink has taken some
// bytes, as a caller giving up would.
type cancellingStore struct {
	*Store
	after  int
	cancel context.CancelFunc
	id     string
}

func (s *cancellingStore) Create(ctx context.Context, id string) (snapshot.Sink, error) {
	s.id = id
	w, err := s.Store.Create(ctx, id)
	if err != nil {
		return nil, err
	}
	return &cancellingSink{Sink: w, s: s}, nil
}

type cancellingSink struct {
	snapshot.Sink
	s *cancellingStore
	n int
}

func (w *cancellingSink) Write(p []byte) (int, error) {
	n, err := w.Sink.Write(p)
	w.n += n
	if w.n >= w.s.after {
		w.s.cancel()
	}
	return n, err
}

func freeHost(t testing.TB) string {
	u := freeURL(t)
	return u.String()
}

// TestClusterDownMidway stops the only member, tries a snapshot (refused
// with a clear error), restarts the member from its data and checks that the
// earlier snapshot is intact and the failed one absent.
func TestClusterDownMidway(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 1)
	cli := c.client(t)
	store, err := New(ctx, cli, Options{Prefix: "down/"})
	require.NoError(t, err)
	src := newState(t, 500, 256)
	eng, err := snapshot.New(store, map[string]snapshot.Source{"s": src}, snapshot.Options{})
	require.NoError(t, err)
	good, err := eng.Snapshot(ctx)
	require.NoError(t, err)

	c.members[0].Close()
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = eng.Snapshot(short)
	require.Error(t, err)
	require.ErrorContains(t, err, "create")
	t.Logf("snapshot with the cluster down: %v", err)

	e, err := embed.StartEtcd(c.cfgs[0])
	require.NoError(t, err)
	c.members[0] = e
	c.waitReady(t)
	ids, err := store.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{good.ID}, ids)
	dst := newState(t, 0, 0)
	eng2, err := snapshot.New(store, map[string]snapshot.Source{"s": dst}, snapshot.Options{})
	require.NoError(t, err)
	require.NoError(t, eng2.Restore(ctx, good))
	require.Equal(t, contents(src), contents(dst))
}
