package updraft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// Self-update defaults.
const (
	// DefaultReadyTimeout bounds how long a new process may take to say
	// hello and to go live.
	DefaultReadyTimeout = 30 * time.Second
	// DefaultWarmingNice is SelfUpdateOptions.WarmingNice's default: at
	// nice +10 a thread weighs about a tenth of one at this process's
	// priority in the Linux scheduler.
	DefaultWarmingNice = 10
	// DefaultDrainTimeout bounds how long in-flight requests may take to
	// finish when a process stops serving at a switch.
	DefaultDrainTimeout = 10 * time.Second
)

// handoverEnv names the environment variable that tells a process it was
// started by a self-update, and which of its file descriptors are what.
const handoverEnv = "UPDRAFT_HANDOVER"

// ErrHandedOver is returned by Resume (and PrepareForUpdate) in a process
// that handed the update over to another process, which finishes it.
var ErrHandedOver = errors.New("updraft: the update was handed over to another process")

// SelfUpdateOptions configures a [SelfUpdate]. Zero fields take the
// documented defaults.
type SelfUpdateOptions struct {
	// Path is the new executable. Empty means this process's own
	// executable path (the host replaced the file there).
	Path string
	// Args are the new process's arguments; nil means this process's.
	Args []string
	// Env is added to this process's environment for the new process.
	Env []string
	// RollbackPath is the executable a new process returns to when it must
	// roll back after the old process is gone (the old process crashed
	// while the new one was being validated). Empty means the old
	// process's executable path — right when Path names a different file,
	// wrong when the host replaced the executable in place: keep the old
	// one and name it here.
	RollbackPath string
	// ReadyTimeout bounds how long the new process may take to become
	// ready; zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// DrainTimeout bounds how long in-flight requests may take to finish
	// at a switch; zero means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// WarmingNice is how much lower the new process's CPU priority is than
	// this one's (added to its nice value, up to 19) while it starts and
	// applies the bulk state, so that this process, which serves
	// meanwhile, wins the cores they share; its priority is made equal to
	// this process's before the switch. Used only where this process may
	// raise a priority again (Linux, with CAP_SYS_NICE, as a data plane
	// run as root has); elsewhere the new process runs at this process's
	// priority throughout. Zero means DefaultWarmingNice; negative turns
	// it off.
	WarmingNice int
	// Stdout and Stderr are the new process's; nil means this process's.
	Stdout, Stderr *os.File
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// SelfUpdate is the [Update] for the update updraft's users run most: the
// data plane replaces its own executable. The new process inherits the
// listeners; the critical state (every function's State) goes to it
// directly, in bulk while this process keeps serving and then as a final
// delta while neither serves (the pause critical requests see: draining
// in-flight requests, then the delta; new connections wait in the socket's
// queue meanwhile). The new process goes live, this process's checks
// validate it, and then either it takes over (commit: it owns the lease of
// the migrated functions and the degraded modes, finishes the update with
// Resume, and this process's Done channel closes) or it hands the state
// back and stops (rollback: this process serves again, nothing lost). The
// store still gets its snapshot, for rollback and for Resume.
//
// Wire it in a few lines, the same in every version of the program:
//
//	up, err := updraft.NewSelfUpdate(updraft.SelfUpdateOptions{})
//	ln, err := up.Listen("tcp", ":8080")
//	srv := &http.Server{Handler: mux}
//	up.HTTP(srv)
//	orch, err := updraft.New(functions, device, opts)
//	go srv.Serve(ln)
//	report, err := up.Start(ctx, orch) // takes over from the old process, or resumes a crashed update
//	// on SIGHUP: orch.PrepareForUpdate(ctx, up)
//	<-up.Done() // handed over: shut the servers down and exit
//
// It lives in this package because it is an Update that needs the
// Orchestrator's journal, state sources and lease; packages below never
// import this one.
//
// A switch closes idle keep-alive connections; a request sent on one as it
// closes is sent again by Go's HTTP client when it carries an
// Idempotency-Key, and its first attempt may have run: handlers with
// effects keep the key of the last request they counted in their State
// and answer a repeat without counting it again.
//
// A SelfUpdate runs one hand-over at a time; its methods are safe for
// concurrent use.
type SelfUpdate struct {
	opts   SelfUpdateOptions
	logger *slog.Logger
	// inherited is set in a process a self-update started.
	inherited *inheritance
	// self is how this process was started, for a new process's rollback.
	self processSpec

	mu        sync.Mutex // guards the fields below
	listeners []*gatedListener
	servers   []*http.Server
	connMu    sync.Mutex
	fresh     map[net.Conn]time.Time // connections of s's servers that have not sent a request, since when
	orch      *Orchestrator
	control   *wire // the channel to the process this one came from
	child     *childProc
	live      bool // this process serves: its gates are open
	childLive bool // the child went live (state moved to it)
	handed    bool // this process handed the update over: it must not finish it
	report    *Report
	// authoritative: this process's state is the data plane's (it serves,
	// or served until a switch it started); false in a process started
	// afresh until Start, and in a new process until it received the state.
	authoritative bool
	// base is what a new process received, for the delta it hands back on
	// a rollback.
	base *cut

	done     chan struct{}
	doneOnce sync.Once
}

// processSpec says how to start a process again.
type processSpec struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
}

// inheritance is what a new process receives from the one that started it.
type inheritance struct {
	Version   int                 `json:"v"`
	Control   int                 `json:"control"`
	Listeners []inheritedListener `json:"listeners"`
	Parent    int                 `json:"parent"`
	Previous  processSpec         `json:"previous"`
}

type inheritedListener struct {
	Network string `json:"network"`
	Address string `json:"address"`
	FD      int    `json:"fd"`
}

// NewSelfUpdate returns the self-update of this process. Call it once,
// early in main: in a process started by a self-update it takes over the
// inherited listeners and the channel to the old process.
func NewSelfUpdate(opts SelfUpdateOptions) (*SelfUpdate, error) {
	if opts.ReadyTimeout < 0 || opts.DrainTimeout < 0 {
		return nil, fmt.Errorf("%w: SelfUpdateOptions timeouts must not be negative", ErrInvalidOption)
	}
	if opts.WarmingNice > 19 {
		return nil, fmt.Errorf("%w: SelfUpdateOptions.WarmingNice %d is above 19, the largest nice increment", ErrInvalidOption, opts.WarmingNice)
	}
	if opts.WarmingNice == 0 {
		opts.WarmingNice = DefaultWarmingNice
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("updraft: self-update: this process's executable: %w", err)
	}
	s := &SelfUpdate{opts: opts, logger: opts.Logger, done: make(chan struct{}),
		self: processSpec{Path: exe, Args: slices.Clone(os.Args[1:]), Env: environWithout(os.Environ(), handoverEnv)}}
	if s.opts.Path == "" {
		s.opts.Path = exe
	}
	if s.opts.Args == nil {
		s.opts.Args = s.self.Args
	}
	if v := os.Getenv(handoverEnv); v != "" {
		if err := s.inherit(v); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// inherit takes over what the old process handed down.
func (s *SelfUpdate) inherit(env string) error {
	var in inheritance
	if err := json.Unmarshal([]byte(env), &in); err != nil {
		return fmt.Errorf("updraft: self-update: %s does not parse: %w", handoverEnv, err)
	}
	if in.Version != 1 {
		return fmt.Errorf("updraft: self-update: %s version %d, this process understands 1", handoverEnv, in.Version)
	}
	conn, err := fileConn(in.Control, "updraft-handover")
	if err != nil {
		return fmt.Errorf("updraft: self-update: the hand-over channel (fd %d): %w", in.Control, err)
	}
	s.control = newWire(conn)
	s.inherited = &in
	if s.opts.RollbackPath == "" {
		s.opts.RollbackPath = in.Previous.Path
	}
	return nil
}

// Inherited reports whether this process was started by a self-update.
func (s *SelfUpdate) Inherited() bool { return s.inherited != nil }

// Done is closed when this process has handed the data plane over (after a
// commit, or after a new process's roll-back to the previous version) and
// should shut its servers down and exit.
func (s *SelfUpdate) Done() <-chan struct{} { return s.done }

func (s *SelfUpdate) finish() { s.doneOnce.Do(func() { close(s.done) }) }

// Report returns the report of the last update this process finished for
// another (the Resume a new process runs after a commit), or nil.
func (s *SelfUpdate) Report() *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.report
}

// Listen returns a listener for network and address: the socket the old
// process handed over under the same network and address, or a new one.
// Its Accept waits until this process is live (see Start) and while it is
// not serving during a switch.
func (s *SelfUpdate) Listen(network, address string) (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var inner net.Listener
	if s.inherited != nil {
		for _, l := range s.inherited.Listeners {
			if l.Network == network && l.Address == address {
				ln, err := fileListener(l.FD, network+":"+address)
				if err != nil {
					return nil, fmt.Errorf("updraft: self-update: inherited listener %s %s (fd %d): %w", network, address, l.FD, err)
				}
				inner = ln
			}
		}
	}
	if inner == nil {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, fmt.Errorf("updraft: self-update: %w", err)
		}
		inner = ln
	}
	g := newGatedListener(inner, network, address)
	if s.live {
		g.setOpen(true)
	}
	s.listeners = append(s.listeners, g)
	return g, nil
}

// HTTP registers a server that serves on listeners of s: when this process
// stops serving at a switch, the server's keep-alives are turned off (idle
// connections close, and clients reconnect to the process that serves
// next); they are turned back on if this process serves again.
func (s *SelfUpdate) HTTP(srv *http.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servers = append(s.servers, srv)
	// Track connections that never carry a request: an HTTP client may
	// dial a connection it then leaves unused in its pool (it found
	// another free first). With keep-alives off the server would wait for
	// its first request forever; drain closes it instead.
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		s.connMu.Lock()
		if st == http.StateNew {
			if s.fresh == nil {
				s.fresh = map[net.Conn]time.Time{}
			}
			s.fresh[c] = time.Now()
		} else {
			delete(s.fresh, c)
		}
		s.connMu.Unlock()
		if prev != nil {
			prev(c, st)
		}
	}
}

// Start is called once the Orchestrator is built, before the host waits
// for traffic. In a process started by a self-update it receives the
// critical state and goes live when the old process says so (the report
// is nil then); in any other process it finishes, with Resume, an update
// a crash interrupted, and opens the listeners.
func (s *SelfUpdate) Start(ctx context.Context, orch *Orchestrator) (*Report, error) {
	s.mu.Lock()
	if s.orch != nil {
		s.mu.Unlock()
		return nil, errors.New("updraft: self-update: Start called twice")
	}
	s.orch = orch
	s.mu.Unlock()
	if s.inherited == nil {
		report, err := orch.Resume(ctx, s)
		s.mu.Lock()
		s.authoritative = true
		s.mu.Unlock()
		s.serve(true)
		return report, err
	}
	return nil, s.takeOver(ctx)
}

// serve opens (or shuts) this process's listeners and turns its servers'
// keep-alives on (or off).
func (s *SelfUpdate) serve(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = on
	for _, srv := range s.servers {
		srv.SetKeepAlivesEnabled(on)
	}
	for _, g := range s.listeners {
		g.setOpen(on)
	}
}

// drain stops serving and waits for every connection to close.
func (s *SelfUpdate) drain(ctx context.Context) error {
	s.serve(false)
	ctx, cancel := context.WithTimeout(ctx, s.opts.DrainTimeout)
	defer cancel()
	s.mu.Lock()
	ls := slices.Clone(s.listeners)
	s.mu.Unlock()
	// Connections that have sent nothing for unusedAfter are closed: a
	// client that meant to use one would have by then.
	const unusedAfter = 20 * time.Millisecond
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(unusedAfter / 2)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			s.connMu.Lock()
			for c, since := range s.fresh {
				if time.Since(since) >= unusedAfter {
					_ = c.Close()
					delete(s.fresh, c)
				}
			}
			s.connMu.Unlock()
		}
	}()
	for _, g := range ls {
		if err := g.waitIdle(ctx); err != nil {
			return fmt.Errorf("updraft: self-update: drain: %w", err)
		}
	}
	return nil
}

// environWithout returns env without the variable key.
func environWithout(env []string, key string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '=' {
			continue
		}
		out = append(out, kv)
	}
	return out
}
