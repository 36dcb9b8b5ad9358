package migrate_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// A process that fell back home (its only target refused it) and dies
// while it replays the buffer onto the checkpoint at home leaves a lease
// from which Reattach and Return still give every answered invocation
// exactly one effect at home. The crash is taken as a copy of the lease's
// directory and of the home state while the replay is held inside its
// first Local call; the reattaching "process" works on the copies.
func TestReattachAfterCrashDuringFallbackReplay(t *testing.T) {
	ctx := ctxT(t)
	var down atomic.Bool // the region refuses everything (400: a target failure)
	h := countHandler()
	reg := startRegion(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "refused", http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	}))

	home := &migrate.MapState{}
	var hold atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	local := func(ctx context.Context, p []byte) ([]byte, error) {
		if hold.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
		return count(home)(ctx, p)
	}
	dir := t.TempDir()
	m := newMover(t, []migrate.Target{newTarget(t, "region", reg.url, migrate.CloudEventsOptions{})},
		migrate.Options{BufferDir: dir, CheckpointEvery: 1000})
	lease, err := m.Migrate(ctx, "fallback", []migrate.Spec{{Function: "count", Local: local, State: home}})
	require.NoError(t, err)
	const acked = 5
	for i := 1; i <= acked; i++ { // answered by the region: acknowledged
		_, err := lease.Invoke(context.Background(), "count", fmt.Appendf(nil, "inv-%d", i))
		require.NoError(t, err)
	}

	down.Store(true)
	hold.Store(true)
	sixth := make(chan error, 1)
	go func() {
		_, err := lease.Invoke(context.Background(), "count", []byte("inv-6"))
		sixth <- err
	}()
	<-reached // fell back home: the checkpoint is imported, the replay is at its first entry

	// The crash: what is on disk, and the home state, as they are now.
	crashed := t.TempDir()
	copyTree(t, dir, crashed)
	var cut bytes.Buffer
	require.NoError(t, home.Export(ctx, &cut))
	close(release)
	require.NoError(t, <-sixth)
	require.NoError(t, lease.Return(ctx))

	down.Store(false) // the region is back for the new process
	home2 := &migrate.MapState{}
	require.NoError(t, home2.Import(ctx, &cut))
	m2 := newMover(t, []migrate.Target{newTarget(t, "region", reg.url, migrate.CloudEventsOptions{})},
		migrate.Options{BufferDir: crashed, CheckpointEvery: 1000})
	l2, err := m2.Reattach(ctx, "fallback", []migrate.Spec{{Function: "count", Local: count(home2), State: home2}})
	require.NoError(t, err)
	require.NoError(t, l2.Return(ctx))
	for i := 1; i <= acked; i++ {
		assert.Equal(t, int64(1), home2.Get(fmt.Sprintf("inv-%d", i)), "acknowledged invocation inv-%d", i)
	}
	assert.LessOrEqual(t, home2.Get("inv-6"), int64(1), "inv-6 (never answered before the crash) took effect at most once")
}

// copyTree copies the regular files under from to to.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	}))
}
