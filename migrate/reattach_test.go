package migrate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// envLeaseChild makes the test binary a host that migrates a counting
// function and invokes it until it is killed.
const envLeaseChild = "MIGRATE_TEST_LEASE_CHILD"

type leaseChild struct {
	Dir, URL, ID string
	Invocations  int
}

// runLeaseChild migrates "count" under lease ID to the target at URL and
// invokes it with distinct payloads from four goroutines, printing
// "ack <payload>" for each answered one, until it is killed.
func runLeaseChild(raw string) int {
	var c leaseChild
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	m, err := newLeaseMover(c.Dir, c.URL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	home := &migrate.MapState{}
	ctx := context.Background()
	lease, err := m.Migrate(ctx, c.ID, []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "migrated")
	out.Flush()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(c.Invocations); i = next.Add(1) {
				p := fmt.Sprintf("inv-%d", i)
				if _, err := lease.Invoke(ctx, "count", []byte(p)); err != nil {
					continue
				}
				mu.Lock()
				fmt.Fprintln(out, "ack", p)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	select {} // until killed
}

func newLeaseMover(dir, url string) (*migrate.Mover, error) {
	t, err := migrate.NewCloudEventsTarget("region", url, migrate.CloudEventsOptions{Region: "eu", Key: testKey})
	if err != nil {
		return nil, err
	}
	// Checkpoints often, so that a buffer trimmed by them is replayed too.
	return migrate.New([]migrate.Target{t}, migrate.Options{BufferDir: dir, CheckpointEvery: 7})
}

// TestReattachAfterTheHostIsKilled: a host process migrates a counting
// function and is SIGKILLed with invocations in flight; a new Mover over
// the same buffer directory reattaches the lease by id and returns it.
// Every acknowledged invocation has taken effect exactly once, none twice;
// with the region alive (its state comes home) and with the region dead
// too (the durable checkpoint and buffer are replayed at home).
func TestReattachAfterTheHostIsKilled(t *testing.T) {
	for _, regionDies := range []bool{false, true} {
		t.Run(fmt.Sprint("region-dies=", regionDies), func(t *testing.T) {
			var url string
			var region *childRegion
			if regionDies {
				region = startChildRegion(t, "127.0.0.5", "count")
				url = region.url
			} else {
				reg, _ := handlerRegion(t, migrate.HandlerOptions{})
				url = reg.url
			}
			dir := t.TempDir()
			cfg, err := json.Marshal(leaseChild{Dir: dir, URL: url, ID: "update-42", Invocations: 100000})
			require.NoError(t, err)
			exe, err := os.Executable()
			require.NoError(t, err)
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), envLeaseChild+"="+string(cfg))
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			sc := bufio.NewScanner(stdout)
			require.True(t, sc.Scan())
			require.Equal(t, "migrated", sc.Text())
			acked := map[string]bool{}
			for sc.Scan() {
				p, ok := strings.CutPrefix(sc.Text(), "ack ")
				require.True(t, ok, sc.Text())
				acked[p] = true
				if len(acked) == 300 {
					require.NoError(t, cmd.Process.Kill()) // SIGKILL, invocations in flight
				}
			}
			_ = cmd.Wait()
			require.GreaterOrEqual(t, len(acked), 300)
			if regionDies {
				region.kill(t)
			}

			m, err := newLeaseMover(dir, url)
			require.NoError(t, err)
			home := &migrate.MapState{}
			specs := []migrate.Spec{{Function: "count", Local: count(home), State: home}}
			lease, err := m.Reattach(context.Background(), "update-42", specs)
			require.NoError(t, err)
			require.NoError(t, lease.Return(context.Background()))

			got := home.Snapshot()
			for p := range acked {
				assert.Equal(t, int64(1), got[p], "acknowledged invocation %s took effect once", p)
			}
			for p, n := range got {
				assert.Equal(t, int64(1), n, "invocation %s took effect %d times", p, n)
			}
			t.Logf("%d acknowledged, %d took effect", len(acked), len(got))
			_, err = os.Stat(filepath.Join(dir, "updraft-lease-update-42"))
			assert.True(t, errors.Is(err, os.ErrNotExist), "Return removed the lease's files")
			_, err = m.Reattach(context.Background(), "update-42", specs)
			require.ErrorIs(t, err, migrate.ErrNotFound)
		})
	}
}

func TestMigrateRefusesABadOrUsedID(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	dir := t.TempDir()
	m, err := newLeaseMover(dir, reg.url)
	require.NoError(t, err)
	home := &migrate.MapState{}
	specs := []migrate.Spec{{Function: "count", Local: count(home), State: home}}
	_, err = m.Migrate(ctxT(t), "../escape", specs)
	require.ErrorContains(t, err, "lease id")
	lease, err := m.Migrate(ctxT(t), "u1", specs)
	require.NoError(t, err)
	_, err = m.Migrate(ctxT(t), "u1", specs)
	require.ErrorContains(t, err, "already exists")
	require.NoError(t, lease.Return(ctxT(t)))
	_, err = m.Reattach(ctxT(t), "u1", specs)
	require.ErrorIs(t, err, migrate.ErrNotFound)
}

// TestDetachThenReattach: a lease detached in one Mover (the old process
// of a self-update) is reattached by another over the same directory and
// returned: every acknowledged invocation took effect once.
func TestDetachThenReattach(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	dir := t.TempDir()
	m, err := newLeaseMover(dir, reg.url)
	require.NoError(t, err)
	home := &migrate.MapState{}
	specs := []migrate.Spec{{Function: "count", Local: count(home), State: home}}
	lease, err := m.Migrate(ctxT(t), "handover", specs)
	require.NoError(t, err)
	for i := range 50 {
		_, err := lease.Invoke(ctxT(t), "count", []byte(fmt.Sprint("inv-", i)))
		require.NoError(t, err)
	}
	require.NoError(t, lease.Detach(ctxT(t)))
	_, err = lease.Invoke(ctxT(t), "count", []byte("late"))
	require.ErrorIs(t, err, migrate.ErrDetached)
	require.ErrorIs(t, lease.Return(ctxT(t)), migrate.ErrDetached)

	m2, err := newLeaseMover(dir, reg.url)
	require.NoError(t, err)
	home2 := &migrate.MapState{}
	back, err := m2.Reattach(ctxT(t), "handover", []migrate.Spec{{Function: "count", Local: count(home2), State: home2}})
	require.NoError(t, err)
	require.NoError(t, back.Return(ctxT(t)))
	got := home2.Snapshot()
	require.Len(t, got, 50)
	for p, n := range got {
		assert.Equal(t, int64(1), n, p)
	}
}
