package updraft

import (
	"context"
	"log/slog"
	"time"
)

// LevelAlert is the level of events that need a human: a rollback that
// failed, a clean-up that left something behind.
const LevelAlert = slog.LevelError + 4

// Event is one thing that happened during an update, for the host to
// forward through its own channels (pager, chat, status page).
type Event struct {
	Time    time.Time
	Level   slog.Level // slog.LevelInfo for phase changes, LevelAlert for alerts
	Phase   Phase
	Message string
	Err     error
}

// emit logs e and hands it to the host's hook. A panic in the hook comes
// back as a *PanicError, which the caller treats as a failure of the step.
func (o *Orchestrator) emit(e Event) error {
	attrs := []any{"phase", string(e.Phase)}
	if e.Err != nil {
		attrs = append(attrs, "err", e.Err)
	}
	// The update's context may be done by now; the log must still go out.
	o.logger.Log(context.Background(), e.Level, e.Message, attrs...)
	if o.opts.OnEvent == nil {
		return nil
	}
	return guard("Options.OnEvent", func() error {
		o.opts.OnEvent(e)
		return nil
	})
}
