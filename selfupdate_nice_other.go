//go:build !linux

package updraft

import "errors"

var errNoRenice = errors.New("renicing a process's threads is implemented on Linux only")

func renice(pid, nice int) (int, error) { return 0, errNoRenice }

func mayRaisePriority() bool { return false }

func ownNice() (int, error) { return 0, errNoRenice }
