package snapshot

import (
	"context"
	"time"
)

// pacingClock is what a pacer reads and waits on: the wall clock and a
// timer in an Engine, a fake in tests.
type pacingClock struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacer keeps one goroutine's work to a share of the time since it
// started, the way PostgreSQL's cost-based vacuum delay keeps a
// background job from starving the queries: work, then rest long enough
// that work/elapsed <= share. The rests are owed against the start, not
// against each chunk, so a rest that oversleeps (timers are coarse)
// shortens the next one instead of slowing the encoding for good.
type pacer struct {
	share   float64
	clock   pacingClock
	start   time.Time     // when the work began
	resumed time.Time     // when the current stretch of work began
	worked  time.Duration // work before the current stretch
}

func newPacer(share float64, clock pacingClock) *pacer {
	now := clock.now()
	return &pacer{share: share, clock: clock, start: now, resumed: now}
}

// rest ends a stretch of work: it sleeps until the work so far is at
// most share of the time since the start, and starts the next stretch.
func (p *pacer) rest(ctx context.Context) error {
	now := p.clock.now()
	p.worked += now.Sub(p.resumed)
	due := p.start.Add(time.Duration(float64(p.worked) / p.share))
	if d := due.Sub(now); d > 0 {
		if err := p.clock.sleep(ctx, d); err != nil {
			return err
		}
	}
	p.resumed = p.clock.now()
	return nil
}
