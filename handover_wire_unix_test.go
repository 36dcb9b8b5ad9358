//go:build unix

package updraft

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWireKeepsWhatAnExitedPeerSent: the other process writes its last
// message and closes the channel (it exits), and this process learns of
// the exit before it has read the message, as happens when the exit is
// noticed by cmd.Wait first. The message must still be read, then the end.
// Closing this end on the exit, as an earlier version did, lost it: the
// old process then took a completed hand-back for a crash.
func TestWireKeepsWhatAnExitedPeerSent(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "wire")
		defer f.Close()
		c, err := net.FileConn(f)
		require.NoError(t, err)
		return c
	}
	mine, theirs := newWire(conn(fds[0])), newWire(conn(fds[1]))
	defer mine.Close()

	require.NoError(t, theirs.send(handoverMsg{Type: msgReturned}))
	require.NoError(t, theirs.Close()) // the peer exits
	mine.peerExited()

	m, err := mine.expect(msgReturned)
	require.NoError(t, err, "the message sent before the exit is lost")
	assert.Equal(t, msgReturned, m.Type)
	_, _, err = mine.next()
	assert.ErrorIs(t, err, errPeerGone)
}

// TestWireEndsWhenTheChannelOutlivesThePeer: should a descriptor of the
// channel outlive the process (leaked to a process of its own), the reads
// end within peerExitedGrace of the exit instead of waiting forever.
func TestWireEndsWhenTheChannelOutlivesThePeer(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	w := newWire(a)
	defer w.Close()
	w.peerExited() // b stays open, as a leaked copy would
	_, _, err := w.next()
	assert.ErrorIs(t, err, errPeerGone)
}
