package updraft

import (
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// threadNices reads the nice value of every thread of pid from
// /proc/<pid>/task/<tid>/stat (field 19).
func threadNices(t *testing.T, pid int) map[int]int {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	nices := map[int]int{}
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread exited
		}
		// The command name (field 2) may hold spaces: count from after it.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		n, err := strconv.Atoi(fields[16]) // field 19 overall
		require.NoError(t, err)
		tid, _ := strconv.Atoi(e.Name())
		nices[tid] = n
	}
	return nices
}

// TestReniceReachesEveryThread: renice sets every thread of a real
// multi-threaded process (a Go child: the test binary, idle), and puts
// them back; ownNice reads this process's nice value as /proc shows it.
func TestReniceReachesEveryThread(t *testing.T) {
	base, err := ownNice()
	require.NoError(t, err)
	require.Equal(t, base, threadNices(t, os.Getpid())[os.Getpid()], "ownNice against /proc/self/stat")
	if !mayRaisePriority() {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root: CAP_SYS_NICE expected")
		}
		t.Skip("needs CAP_SYS_NICE to put the priority back (run as root)")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^TestHelperIdle$")
	cmd.Env = append(os.Environ(), "UPDRAFT_TEST_IDLE=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid

	n, err := renice(pid, min(base+7, 19))
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 1)
	for tid, nice := range threadNices(t, pid) {
		require.Equal(t, min(base+7, 19), nice, "thread %d after lowering", tid)
	}
	_, err = renice(pid, base)
	require.NoError(t, err)
	for tid, nice := range threadNices(t, pid) {
		require.Equal(t, base, nice, "thread %d after restoring", tid)
	}
	_, err = renice(1<<22+1, base) // above pid_max's ceiling: no such process
	require.ErrorContains(t, err, "renice pid")
	require.ErrorIs(t, err, fs.ErrNotExist, "a process that is gone is told apart (warming.end ignores it)")
}

// TestHelperIdle is the child of TestReniceReachesEveryThread: it waits
// until its stdin closes.
func TestHelperIdle(t *testing.T) {
	if os.Getenv("UPDRAFT_TEST_IDLE") == "" {
		t.Skip("helper process for TestReniceReachesEveryThread")
	}
	_, _ = os.Stdin.Read(make([]byte, 1))
}

// checkWarmedBack checks what WarmingNice did in a committed self-update:
// where this process may raise a priority again, the report says the new
// process ran lower while it warmed, and every thread of it (pid) now runs
// at the old process's priority, which is this test's.
func checkWarmedBack(t *testing.T, report string, pid int) {
	t.Helper()
	if !mayRaisePriority() {
		require.NotContains(t, report, "ran at nice", "lowered a priority it could not raise again")
		return
	}
	base, err := ownNice()
	require.NoError(t, err)
	require.Contains(t, report, "self-update: the new process ran at nice "+strconv.Itoa(min(base+DefaultWarmingNice, 19)))
	for tid, nice := range threadNices(t, pid) {
		require.Equal(t, base, nice, "thread %d of the new process after the switch", tid)
	}
}

// TestWarmingNiceOption: the default is DefaultWarmingNice, a negative
// value turns it off, and a value no nice can reach is refused naming it.
func TestWarmingNiceOption(t *testing.T) {
	up, err := NewSelfUpdate(SelfUpdateOptions{})
	require.NoError(t, err)
	require.Equal(t, DefaultWarmingNice, up.opts.WarmingNice)
	up, err = NewSelfUpdate(SelfUpdateOptions{WarmingNice: -1})
	require.NoError(t, err)
	require.Nil(t, up.startWarming(os.Getpid()), "a negative WarmingNice lowers nothing")
	_, err = NewSelfUpdate(SelfUpdateOptions{WarmingNice: 20})
	require.ErrorIs(t, err, ErrInvalidOption)
	require.ErrorContains(t, err, "SelfUpdateOptions.WarmingNice 20")
}
