package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/updraft-dev/updraft/hal"
)

// Defaults for zero fields of [Options].
const (
	DefaultBufferBytes     = 64 << 20 // per function
	DefaultCheckpointEvery = 256
	DefaultFailoverAfter   = 2 * time.Second
	DefaultProbeTimeout    = 2 * time.Second
	DefaultCallTimeout     = 10 * time.Second
	DefaultRetryInitial    = 5 * time.Millisecond
	DefaultRetryMax        = 250 * time.Millisecond
	DefaultMaxInFlight     = 16
)

// Options configure a [Mover]. Zero fields take the documented defaults.
type Options struct {
	// Policy ranks candidate targets; default CheapestFit{}.
	Policy Policy
	// BufferDir holds each lease's on-disk invocation buffer, in a
	// directory of its own that Return removes. Default os.TempDir().
	// New checks that it can create files there.
	BufferDir string
	// NoSync leaves the invocation buffer to the page cache instead of
	// fsyncing each entry before its caller is answered. An acknowledged
	// invocation's effect is still at its target; what is given up is the
	// double failure: if the target dies and this process crashes before
	// the next checkpoint comes home, Reattach has no buffer to replay and
	// those effects are lost. It saves an fsync per delivery (shared by
	// concurrent ones): see BenchmarkInvoke.
	NoSync bool
	// BufferBytes bounds, per function, the invocations kept on disk
	// (those not yet covered by a state checkpoint that came back, and
	// those waiting for an unreachable target). Beyond it Invoke fails with
	// ErrBufferFull, counted in LeaseStats.Overflow. Default
	// DefaultBufferBytes.
	BufferBytes int64
	// Key is the HMAC key for targets created without one of their own.
	Key []byte
	// Clock stamps requests of targets created without a clock of their
	// own; default time.Now.
	Clock Clock
	// Logger receives placements, failovers and refusals; nil discards.
	Logger *slog.Logger
	// CheckpointEvery is how many invocations of a stateful function run
	// remotely between two state checkpoints fetched home; default
	// DefaultCheckpointEvery. Smaller means less to replay after a
	// target dies, larger means less traffic.
	CheckpointEvery int
	// FailoverAfter is how long a target may stay unreachable (retrying
	// with backoff, invocations waiting in the buffer) before its
	// functions fail over to the next target; default DefaultFailoverAfter.
	FailoverAfter time.Duration
	// RetryInitial and RetryMax bound the exponential backoff between
	// retries; defaults DefaultRetryInitial, DefaultRetryMax.
	RetryInitial, RetryMax time.Duration
	// ProbeTimeout bounds each health probe; default DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// CallTimeout bounds each attempt of a call; default DefaultCallTimeout.
	// An attempt without an answer in time is retried (same idempotency
	// key) like one that could not reach its target.
	CallTimeout time.Duration
	// MaxPayloadBytes bounds an invocation's payload; default
	// DefaultMaxPayloadBytes.
	MaxPayloadBytes int64
	// MaxInFlight bounds the invocations of one function on their way to
	// its target at once (a target may ask for fewer: [InFlightLimiter]);
	// default DefaultMaxInFlight. Concurrent callers'
	// invocations are delivered concurrently (their order was never
	// defined); one caller's successive invocations stay in order, and
	// replays after an outage or a failover go one at a time, in buffer
	// order. 1 delivers everything strictly in buffer order.
	MaxInFlight int
}

// Mover places functions on targets and moves them there; it implements
// [Migrator]. A Mover is safe for concurrent use; each Migrate returns an
// independent [Lease].
type Mover struct {
	targets []Target
	opts    Options

	metrics *metrics

	mu   sync.Mutex
	dead map[string]error // targets found dead, by name, until a probe succeeds; guarded by mu
}

var _ Migrator = (*Mover)(nil)

// New returns a Mover over targets, in the order given (used to break
// ties). It checks the options and targets up front: names unique and
// non-empty, a way to authenticate to every remote target (an HMAC key or
// a TLS client certificate), a writable BufferDir.
func New(targets []Target, opts Options) (*Mover, error) {
	if len(targets) == 0 {
		return nil, errors.New("migrate: New: no targets")
	}
	if err := checkKey(opts.Key); len(opts.Key) > 0 && err != nil {
		return nil, fmt.Errorf("migrate: New: Options.Key: %w", err)
	}
	seen := map[string]bool{}
	for i, t := range targets {
		if t == nil {
			return nil, fmt.Errorf("migrate: New: targets[%d] is nil", i)
		}
		name := t.Info().Name
		if name == "" {
			return nil, fmt.Errorf("migrate: New: targets[%d] has no name", i)
		}
		if seen[name] {
			return nil, fmt.Errorf("migrate: New: target name %q used twice", name)
		}
		seen[name] = true
		if ce, ok := t.(*CloudEventsTarget); ok {
			ce.setDefaults(opts.Key, opts.Clock)
			if !ce.authenticated() {
				return nil, fmt.Errorf("migrate: New: target %q has no HMAC key (set CloudEventsOptions.Key or Options.Key) and no TLS client certificate", name)
			}
		}
	}
	if err := fillDefaults(&opts); err != nil {
		return nil, err
	}
	return &Mover{targets: slices.Clone(targets), opts: opts, metrics: newMetrics(), dead: map[string]error{}}, nil
}

func fillDefaults(o *Options) error {
	if o.Policy == nil {
		o.Policy = CheapestFit{}
	}
	if o.BufferDir == "" {
		o.BufferDir = os.TempDir()
	}
	probe, err := os.CreateTemp(o.BufferDir, ".updraft-probe-*")
	if err != nil {
		return fmt.Errorf("migrate: New: BufferDir %q is not writable: %w", o.BufferDir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	positiveOr(&o.BufferBytes, DefaultBufferBytes)
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	positiveOr(&o.CheckpointEvery, DefaultCheckpointEvery)
	positiveOr(&o.FailoverAfter, DefaultFailoverAfter)
	positiveOr(&o.RetryInitial, DefaultRetryInitial)
	positiveOr(&o.RetryMax, DefaultRetryMax)
	positiveOr(&o.ProbeTimeout, DefaultProbeTimeout)
	positiveOr(&o.CallTimeout, DefaultCallTimeout)
	positiveOr(&o.MaxPayloadBytes, DefaultMaxPayloadBytes)
	positiveOr(&o.MaxInFlight, DefaultMaxInFlight)
	return nil
}

// Migrate probes the targets, places each spec on the best healthy target
// its Regions allow that has room (per the Policy), moves its state there,
// and returns a Lease routing its invocations. On error it has returned
// whatever it had moved, and the lease is nil.
//
// From the moment Migrate returns, invoke the functions through the lease:
// state changed at home after the export is not carried. Always end a
// lease with Return; its delivery goroutines and buffer live until then.
//
// id names the lease (1 to 128 of [A-Za-z0-9._-]); a caller that must
// find it again after a crash (with [Mover.Reattach]) records it before
// calling Migrate. An empty id picks a random one ([Lease.ID]).
func (m *Mover) Migrate(ctx context.Context, id string, specs []Spec) (*Lease, error) {
	if err := validateSpecs(specs); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("migrate: Migrate: %w", err)
	}
	l, err := newLease(m, id)
	if err != nil {
		return nil, err
	}
	health := m.probeAll(ctx)
	used := map[string]hal.Vector{}
	placed := map[string]int{}
	providers := map[string]int{}
	var failed error
	for _, spec := range specs {
		cands, skipped := m.candidates(spec, health, used, placed, providers, nil)
		if len(cands) == 0 {
			failed = fmt.Errorf("%w for function %q: %s", ErrNoTarget, spec.Function, strings.Join(skipped, "; "))
			break
		}
		ranked, why := m.opts.Policy.Rank(spec, cands)
		if len(skipped) > 0 {
			why += "; passed over: " + strings.Join(skipped, "; ")
		}
		c := ranked[0]
		if err := l.move(ctx, spec, m.target(c.Info.Name), why); err != nil {
			failed = err
			break
		}
		used[c.Info.Name] = used[c.Info.Name].Add(spec.Demand)
		placed[c.Info.Name]++
		providers[c.Info.Provider]++
	}
	if failed != nil {
		rctx := context.WithoutCancel(ctx)
		if rerr := l.Return(rctx); rerr != nil {
			failed = multierror.Append(failed, fmt.Errorf("migrate: returning what was moved: %w", rerr))
		}
		return nil, failed
	}
	return l, nil
}

func validateSpecs(specs []Spec) error {
	if len(specs) == 0 {
		return errors.New("migrate: Migrate: no specs")
	}
	seen := map[string]bool{}
	for i, s := range specs {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("migrate: specs[%d]: %w", i, err)
		}
		if seen[s.Function] {
			return fmt.Errorf("migrate: specs[%d]: function %q listed twice", i, s.Function)
		}
		seen[s.Function] = true
	}
	return nil
}

// probeResult is one target's health as last probed.
type probeResult struct {
	latency time.Duration
	err     error
}

// probeAll probes every target at once.
func (m *Mover) probeAll(ctx context.Context) map[string]probeResult {
	out := make(map[string]probeResult, len(m.targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range m.targets {
		wg.Go(func() {
			r := m.probe(ctx, t)
			mu.Lock()
			out[t.Info().Name] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (m *Mover) probe(ctx context.Context, t Target) probeResult {
	pctx, cancel := context.WithTimeout(ctx, m.opts.ProbeTimeout)
	defer cancel()
	lat, err := t.Probe(pctx)
	m.mu.Lock()
	if err == nil {
		delete(m.dead, t.Info().Name)
	} else {
		m.dead[t.Info().Name] = err
	}
	m.mu.Unlock()
	return probeResult{latency: lat, err: err}
}

// candidates returns the healthy targets allowed for spec with room for
// it, and a reason for each target passed over. exclude names targets
// already tried.
func (m *Mover) candidates(spec Spec, health map[string]probeResult, used map[string]hal.Vector,
	placed, providers map[string]int, exclude map[string]bool) ([]Candidate, []string) {
	var cands []Candidate
	var skipped []string
	for _, t := range m.targets {
		info := t.Info()
		h := health[info.Name]
		switch {
		case exclude[info.Name]:
			skipped = append(skipped, info.Name+" already failed")
		case len(spec.Regions) > 0 && !slices.Contains(spec.Regions, info.Region):
			skipped = append(skipped, fmt.Sprintf("%s is in region %q, not in the allow-list %v", info.Name, info.Region, spec.Regions))
		case h.err != nil:
			skipped = append(skipped, fmt.Sprintf("%s failed its probe: %v", info.Name, h.err))
		case unfit(spec, t) != "":
			skipped = append(skipped, unfit(spec, t))
		case len(info.Capacity) > 0 && !used[info.Name].Add(spec.Demand).FitsWithin(info.Capacity):
			skipped = append(skipped, fmt.Sprintf("%s lacks room (short by %s)", info.Name,
				used[info.Name].Add(spec.Demand).Shortfall(info.Capacity)))
		default:
			cands = append(cands, Candidate{Info: info, Latency: h.latency, Placed: placed[info.Name], ProviderPlaced: providers[info.Provider]})
		}
	}
	return cands, skipped
}

// unfit says why t cannot host spec's function, from what t declared
// and how it answered its probe (see [ProbeAnswerer]), or "" when it can:
// a stateful function needs a target that speaks this package's state
// protocol (its probe is answered with an EventResult); a function whose
// callers need an answer cannot go to a target declared to acknowledge
// only, nor to one that answers with events of a type the function does
// not accept. (A target that acknowledged the probe without an event may
// still answer invocations; should it not, the invocation fails with
// ErrNoAnswer and is not run again.)
func unfit(spec Spec, t Target) string {
	pa, ok := t.(ProbeAnswerer)
	if !ok {
		return ""
	}
	a := pa.ProbeAnswer()
	name := t.Info().Name
	switch {
	case spec.State != nil && (a.AcknowledgeOnly || a.Type != EventResult):
		how := fmt.Sprintf("answered its probe with HTTP %d and an event of type %q", a.Status, a.Type)
		if a.AcknowledgeOnly {
			how = "is declared AcknowledgeOnly"
		} else if a.Type == "" {
			how = fmt.Sprintf("answered its probe with HTTP %d and no event", a.Status)
		}
		return fmt.Sprintf("%s %s: it does not speak the updraft state protocol that function %q's State needs (a Handler answers probes with %s)", name, how, spec.Function, EventResult)
	case spec.NoAnswer:
		return ""
	case a.AcknowledgeOnly && !a.RepliesLater:
		return fmt.Sprintf("%s is declared AcknowledgeOnly without a ReplyTo, and function %q needs an answer (set Spec.NoAnswer if its callers need none)", name, spec.Function)
	case a.Type != "" && a.Type != EventResult && !slices.Contains(spec.AnswerTypes, a.Type):
		return fmt.Sprintf("%s answers with events of type %q, which function %q does not accept (list it in Spec.AnswerTypes)", name, a.Type, spec.Function)
	}
	return ""
}

// Unhealthy returns the targets whose last probe failed, or that a lease
// failed over from since, with the error that condemned each. A later
// successful probe (at the next Migrate or failover) clears a target.
func (m *Mover) Unhealthy() map[string]error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.dead)
}

// condemned reports whether t is known dead (a failover left it, and no
// probe has found it healthy since).
func (m *Mover) condemned(t Target) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, dead := m.dead[t.Info().Name]
	return dead
}

func (m *Mover) target(name string) Target {
	for _, t := range m.targets {
		if t.Info().Name == name {
			return t
		}
	}
	return nil
}

func newLeaseID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func leaseDir(base, id string) string { return filepath.Join(base, "updraft-lease-"+id) }
