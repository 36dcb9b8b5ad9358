package updraft

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
)

// warming keeps a new process at a lower CPU priority while it starts and
// applies the bulk state (SelfUpdateOptions.WarmingNice). A nil *warming
// does nothing: the priority is not lowered where it could not be raised
// again.
type warming struct {
	pid, base, nice int
	logger          *slog.Logger
}

// startWarming lowers pid's priority, if opts allow and this process may
// raise it again.
func (s *SelfUpdate) startWarming(pid int) *warming {
	if s.opts.WarmingNice < 0 || !mayRaisePriority() {
		return nil
	}
	base, err := ownNice()
	if err != nil {
		return nil
	}
	w := &warming{pid: pid, base: base, nice: min(base+s.opts.WarmingNice, 19), logger: s.logger}
	w.again()
	return w
}

// again lowers the priority of the threads the new process started since
// the last call (a thread takes its creator's priority, so only threads
// created before their creator was lowered need it).
func (w *warming) again() {
	if w == nil {
		return
	}
	if _, err := renice(w.pid, w.nice); err != nil {
		w.logger.Debug("updraft: self-update: lowering the new process's priority", "err", err)
	}
}

// end gives the new process this process's priority back.
func (w *warming) end() error {
	if w == nil {
		return nil
	}
	// A process that has exited has no priority to restore; the next step
	// of the hand-over reports its exit.
	if _, err := renice(w.pid, w.base); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("updraft: self-update: restore the new process's priority to nice %d: %w", w.base, err)
	}
	return nil
}
