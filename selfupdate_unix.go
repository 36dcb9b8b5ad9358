//go:build unix

package updraft

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// childProc is a new process started by a hand-over, and the channel to it.
type childProc struct {
	cmd    *exec.Cmd
	wire   *wire
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// startChild starts spec with this process's listeners and one end of a
// new hand-over channel.
func (s *SelfUpdate) startChild(spec processSpec) (*childProc, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("updraft: self-update: socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "updraft-handover"), os.NewFile(uintptr(fds[1]), "updraft-handover")
	defer theirs.Close()
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		theirs.Close()
		return nil, fmt.Errorf("updraft: self-update: hand-over channel: %w", err)
	}
	in := inheritance{Version: 1, Control: 3, Parent: os.Getpid(), Previous: s.self}
	files := []*os.File{theirs}
	s.mu.Lock()
	listeners := append([]*gatedListener(nil), s.listeners...)
	s.mu.Unlock()
	for _, g := range listeners {
		f, err := g.file()
		if err != nil {
			closeFiles(files[1:])
			conn.Close()
			return nil, err
		}
		in.Listeners = append(in.Listeners, inheritedListener{Network: g.network, Address: g.address, FD: 3 + len(files)})
		files = append(files, f)
	}
	defer closeFiles(files[1:])
	env, err := json.Marshal(in)
	if err != nil {
		conn.Close()
		return nil, err
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append(environWithout(spec.Env, handoverEnv), handoverEnv+"="+string(env))
	cmd.Stdout, cmd.Stderr = s.opts.Stdout, s.opts.Stderr
	cmd.ExtraFiles = files
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("updraft: self-update: start %s: %w", spec.Path, err)
	}
	c := &childProc{cmd: cmd, wire: newWire(conn), exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
		// The channel ends with the process, once what it sent is read.
		c.wire.peerExited()
	}()
	s.logger.Info("updraft: self-update: started the new process", "path", spec.Path, "pid", cmd.Process.Pid)
	return c, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

func (c *childProc) pid() int { return c.cmd.Process.Pid }

// expect reads the next message from the child; its exit ends the wait.
func (c *childProc) expect(typ string) (*handoverMsg, error) {
	m, err := c.wire.expect(typ)
	if errors.Is(err, errPeerGone) {
		select {
		case <-c.exited:
			return nil, fmt.Errorf("the new process (pid %d) exited: %v", c.pid(), c.err)
		case <-time.After(time.Second):
		}
	}
	return m, err
}

// stop waits up to grace for the child to exit, then kills it.
func (c *childProc) stop(grace time.Duration) error {
	_ = c.wire.Close()
	select {
	case <-c.exited:
		return nil
	case <-time.After(grace):
	}
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("updraft: self-update: kill the new process (pid %d): %w", c.pid(), err)
	}
	<-c.exited
	return fmt.Errorf("updraft: self-update: the new process (pid %d) did not stop within %v and was killed", c.pid(), grace)
}

// release lets the child live on without this process (after a commit).
func (c *childProc) release() {
	_ = c.wire.Close()
}

// fileConn turns an inherited descriptor into a connection.
func fileConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return nil, fmt.Errorf("descriptor %d is not open", fd)
	}
	defer f.Close()
	return net.FileConn(f)
}

// fileListener turns an inherited descriptor into a listener.
func fileListener(fd int, name string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return nil, fmt.Errorf("descriptor %d is not open", fd)
	}
	defer f.Close()
	return net.FileListener(f)
}
