//go:build !unix

package updraft

import (
	"errors"
	"net"
	"time"
)

// errSelfUpdateUnsupported: passing sockets to a new process needs Unix.
var errSelfUpdateUnsupported = errors.New("updraft: self-update needs a Unix system")

type childProc struct{ wire *wire }

func (s *SelfUpdate) startChild(processSpec) (*childProc, error) {
	return nil, errSelfUpdateUnsupported
}
func (c *childProc) pid() int                            { return 0 }
func (c *childProc) expect(string) (*handoverMsg, error) { return nil, errSelfUpdateUnsupported }
func (c *childProc) stop(time.Duration) error            { return nil }
func (c *childProc) release()                            {}
func fileConn(int, string) (net.Conn, error)             { return nil, errSelfUpdateUnsupported }
func fileListener(int, string) (net.Listener, error)     { return nil, errSelfUpdateUnsupported }
