package validate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// TCPProbeOptions configure a [TCPProbe]. The zero value dials with a
// plain net.Dialer and no latency bound.
type TCPProbeOptions struct {
	// Dialer dials; nil means &net.Dialer{}.
	Dialer *net.Dialer
	// MaxLatency bounds the connect time; 0 means no bound (the Suite's
	// per-check timeout still applies).
	MaxLatency time.Duration
}

// TCPProbe is a [Check] that passes when a TCP connection to its address
// is accepted (and, with a bound, quickly enough); the connection is closed
// at once. A refused or unreachable address fails. Safe for concurrent use.
type TCPProbe struct {
	name    string
	address string
	opts    TCPProbeOptions
}

var _ Check = (*TCPProbe)(nil)

// NewTCPProbe returns a probe of address ("host:port"). It rejects an
// empty name, an address without host or port, and a negative bound.
func NewTCPProbe(name, address string, opts TCPProbeOptions) (*TCPProbe, error) {
	if name == "" {
		return nil, errors.New("validate: NewTCPProbe: empty name")
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("validate: NewTCPProbe %q: address: %w", name, err)
	}
	if host == "" || port == "" {
		return nil, fmt.Errorf("validate: NewTCPProbe %q: address %q needs a host and a port", name, address)
	}
	if opts.MaxLatency < 0 {
		return nil, fmt.Errorf("validate: NewTCPProbe %q: MaxLatency %s is negative", name, opts.MaxLatency)
	}
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{}
	}
	return &TCPProbe{name: name, address: address, opts: opts}, nil
}

// Name returns the probe's name.
func (p *TCPProbe) Name() string { return p.name }

// Run connects and closes.
func (p *TCPProbe) Run(ctx context.Context) Result {
	start := time.Now()
	conn, err := p.opts.Dialer.DialContext(ctx, "tcp", p.address)
	latency := time.Since(start)
	if err != nil {
		return Result{Check: p.name, Verdict: Fail,
			Err:      fmt.Errorf("validate: probe %q: connect %s: %w", p.name, p.address, err),
			Evidence: []string{fmt.Sprintf("connect %s: failed after %s", p.address, roundDuration(latency))}}
	}
	conn.Close()
	res := Result{Check: p.name, Verdict: Pass, Score: 1,
		Evidence: []string{fmt.Sprintf("connect %s: accepted in %s", p.address, roundDuration(latency))}}
	if p.opts.MaxLatency > 0 && latency > p.opts.MaxLatency {
		res.Verdict, res.Score = Fail, 0
		res.Err = fmt.Errorf("validate: probe %q: %w: connect took %s > %s", p.name, ErrTooSlow, roundDuration(latency), p.opts.MaxLatency)
	}
	return res
}
