package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The headline benchmark: steady load of both request classes over real
// sockets, from clients that reuse their sessions, while one update runs,
// three ways on the same program and load.
const (
	criticalClients    = 8
	sessionsPerClient  = 4
	noncriticalClients = 2
	warmup             = 1500 * time.Millisecond
	after              = 1500 * time.Millisecond
)

// proc is a server process of the benchmark, and the lines it prints.
type proc struct {
	cmd   *exec.Cmd
	lines chan map[string]string
}

func startProc(c config, role string, env ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-addr", c.addr, "-admin", c.admin, "-dir", c.dir, "-region", c.region, "-flows", strconv.Itoa(c.flows), "-warming-nice", strconv.Itoa(c.warmingNice),
		"-snapshot-cpu", strconv.FormatFloat(c.snapshotCPU, 'g', -1, 64))
	cmd.Env = append(os.Environ(), append([]string{roleEnv + "=" + role, versionEnv + "=1"}, env...)...)
	cmd.Stderr = io.Discard
	if os.Getenv("DATAPLANE_DEBUG") != "" {
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, lines: make(chan map[string]string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			words := strings.Fields(sc.Text())
			if len(words) == 0 {
				continue
			}
			m := map[string]string{"event": words[0]}
			for _, w := range words[1:] {
				k, v, _ := strings.Cut(w, "=")
				m[k] = v
			}
			p.lines <- m
		}
		close(p.lines)
	}()
	return p, nil
}

// both waits for a line announcing each of two events, in either order,
// and returns the first's.
func (p *proc) both(first, second string, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	var got map[string]string
	seen := map[string]bool{}
	for !seen[first] || !seen[second] {
		m, err := p.nextAny(time.Until(deadline))
		if err != nil {
			return nil, fmt.Errorf("waiting for %q and %q: %w", first, second, err)
		}
		seen[m["event"]] = true
		if m["event"] == first {
			got = m
		}
	}
	return got, nil
}

func (p *proc) nextAny(timeout time.Duration) (map[string]string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m, ok := <-p.lines:
		if !ok {
			return nil, errors.New("the process ended")
		}
		return m, nil
	case <-t.C:
		return nil, fmt.Errorf("nothing within %v", timeout)
	}
}

// next waits for the next line announcing event.
func (p *proc) next(event string, timeout time.Duration) (map[string]string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				return nil, fmt.Errorf("the process ended before %q", event)
			}
			if m["event"] == event {
				return m, nil
			}
		case <-t.C:
			return nil, fmt.Errorf("no %q within %v", event, timeout)
		}
	}
}

// sample is one request: when it started and ended, and whether it got
// the answer it should.
type sample struct {
	start, end time.Time
	ok         bool
	critical   bool
}

// load drives the data plane until stop closes.
type load struct {
	addr    string
	rate    float64 // critical requests per second, all clients together; 0: each client sends as fast as it is answered
	mu      sync.Mutex
	samples []sample
	acked   map[string]int64 // session → last value the data plane answered
	extra   map[string]bool  // sessions with a request whose answer was lost
	lost    map[string]bool  // sessions whose counter went back: an acknowledged bump was lost
	wg      sync.WaitGroup
	stop    chan struct{}
}

func newLoad(addr string, rate float64) *load {
	return &load{addr: addr, rate: rate, acked: map[string]int64{}, extra: map[string]bool{}, lost: map[string]bool{}, stop: make(chan struct{})}
}

func (l *load) record(s sample) {
	l.mu.Lock()
	l.samples = append(l.samples, s)
	l.mu.Unlock()
}

func (l *load) run() {
	for c := 0; c < criticalClients; c++ {
		l.wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
			// Paced, each client sends on a fixed schedule, and a request's
			// latency counts from when it was due (so a stall delays the
			// requests behind it, and they count it).
			var interval time.Duration
			if l.rate > 0 {
				interval = time.Duration(float64(time.Second) * criticalClients / l.rate)
			}
			t0 := time.Now().Add(time.Duration(c) * interval / criticalClients)
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				id := fmt.Sprintf("c%d-s%d", c, (i/2)%sessionsPerClient)
				start := time.Now()
				if interval > 0 {
					due := t0.Add(time.Duration(i) * interval)
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
					start = due
				}
				var s sample
				if i%2 == 0 {
					body, err := do(client, http.MethodPost, "http://"+l.addr+"/session/"+id)
					n, perr := strconv.ParseInt(body, 10, 64)
					s = sample{start, time.Now(), err == nil && perr == nil, true}
					l.mu.Lock()
					if s.ok {
						if n <= l.acked[id] {
							l.lost[id] = true // the data plane answered less than it had acknowledged
						}
						l.acked[id] = n
					} else {
						l.extra[id] = true
					}
					l.mu.Unlock()
				} else {
					body, err := do(client, http.MethodGet, "http://"+l.addr+"/route?dst=10.1.2.3")
					s = sample{start, time.Now(), err == nil && body == "eth1", true}
				}
				l.record(s)
				if !s.ok {
					time.Sleep(time.Millisecond) // a failing client retries at once, not in a tight loop
				}
			}
		})
	}
	for c := 0; c < noncriticalClients; c++ {
		l.wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := "/log"
				if i%2 == 1 {
					path = "/usage"
				}
				start := time.Now()
				req, _ := http.NewRequest(http.MethodPost, "http://"+l.addr+path, strings.NewReader(fmt.Sprintf("client-%d", c)))
				resp, err := client.Do(req)
				ok := false
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode < 300
				}
				l.record(sample{start, time.Now(), ok, false})
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
}

func (l *load) halt() { close(l.stop); l.wg.Wait() }

func do(client *http.Client, method, url string) (string, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return "", err
	}
	// Safe to retry on a connection the server closed while idle: a
	// session bump is idempotent per key for this benchmark's accounting
	// (an answer lost after the effect shows as a session ahead, never
	// behind). Go's transport retries such requests only with this header.
	if method == http.MethodPost {
		req.Header.Set("Idempotency-Key", strconv.FormatInt(time.Now().UnixNano(), 36))
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s", resp.Status)
	}
	return string(b), nil
}

// result is one way's figures.
type result struct {
	way                  string
	sent, failed         int
	gap                  time.Duration
	p50Before, p99Before time.Duration
	p50During, p99During time.Duration
	kept, total          int
	flowsKept, flows     int // background flows the final process holds, of those preloaded
	ncServed, ncDegraded int
	gapAt                time.Duration // when the longest gap began, from the trigger
	gapRun               time.Duration // the longest gap over the whole run
	switchTook           time.Duration
	note                 string
	gapNoise             time.Duration // the longest gap before the trigger: the machine's own noise
	top                  []gapSpan     // the longest gaps during the update, longest first
	phases               []phaseJSON   // updraft's timeline, when the way is updraft
	trigger              time.Time
	worst                []time.Duration // the worst critical latency per 20 ms of due time, from 60 ms before the trigger
}

// latencies lays out r.worst: "-60:1.4 -40:1.5 ... 980:1.6", the worst
// latency in ms of the requests due in the 20 ms from each offset.
func (r result) latencies() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s worst critical latency (ms) by 20 ms of due time from the trigger:", r.way)
	for k, d := range r.worst {
		fmt.Fprintf(&b, " %d:%.1f", k*20-60, float64(d)/float64(time.Millisecond))
	}
	return b.String()
}

// gapSpan is one stretch without a successful critical response.
type gapSpan struct{ from, to time.Time }

// breakdown lays the longest gaps beside the update's phases, offsets from
// the trigger, so a long gap can be put down to the phase it fell in (or to
// none: the machine's noise).
func (r result) breakdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s noise gap before the trigger=%v; phases (start+duration from the trigger):", r.way, r.gapNoise.Round(10*time.Microsecond))
	for _, ph := range r.phases {
		st := time.Unix(0, ph.Start).Sub(r.trigger)
		fmt.Fprintf(&b, " %s@%v+%v", ph.Phase, st.Round(100*time.Microsecond), time.Duration(ph.Nanos).Round(100*time.Microsecond))
	}
	for i, g := range r.top {
		fmt.Fprintf(&b, "\n%-9s gap #%d %v from %v:", r.way, i+1, g.to.Sub(g.from).Round(10*time.Microsecond), g.from.Sub(r.trigger).Round(100*time.Microsecond))
		in := false
		for _, ph := range r.phases {
			st := time.Unix(0, ph.Start)
			en := st.Add(time.Duration(ph.Nanos))
			if st.Before(g.to) && en.After(g.from) {
				fmt.Fprintf(&b, " in %s", ph.Phase)
				in = true
			}
		}
		if !in {
			b.WriteString(" in no phase of the update")
		}
	}
	return b.String()
}

func (l *load) result(way string, trigger, switched time.Time, final string, flows int) result {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := result{way: way, switchTook: switched.Sub(trigger)}
	var before, during []time.Duration
	var okEnds []time.Time
	for _, s := range l.samples {
		if !s.critical {
			if s.ok {
				r.ncServed++
			} else {
				r.ncDegraded++
			}
			continue
		}
		r.sent++
		if !s.ok {
			r.failed++
			continue
		}
		okEnds = append(okEnds, s.end)
		switch {
		case s.end.Before(trigger):
			before = append(before, s.end.Sub(s.start))
		case !s.start.After(switched.Add(200 * time.Millisecond)):
			during = append(during, s.end.Sub(s.start))
		}
	}
	slices.SortFunc(okEnds, func(a, b time.Time) int { return a.Compare(b) })
	// The worst latency of the critical requests due in each 20 ms from
	// 60 ms before the trigger to 1 s after it: where the p99 comes from.
	worst := make([]time.Duration, 53)
	for _, s := range l.samples {
		since := s.start.Sub(trigger) + 60*time.Millisecond // from the first 20 ms shown
		if !s.critical || !s.ok || since <= 0 {
			continue
		}
		if k := int(since / (20 * time.Millisecond)); k < len(worst) {
			worst[k] = max(worst[k], s.end.Sub(s.start))
		}
	}
	r.worst = worst
	// The gap is the longest time without a successful critical response
	// during the update: from the trigger to 100 ms after the switch
	// completed. The longest over the whole run (machine noise included)
	// is reported beside it.
	until := switched.Add(100 * time.Millisecond)
	r.trigger = trigger
	var spans []gapSpan
	for i := 1; i < len(okEnds); i++ {
		d := okEnds[i].Sub(okEnds[i-1])
		if !okEnds[i].After(trigger) && d > r.gapNoise {
			r.gapNoise = d
		}
		if okEnds[i].After(trigger) && !okEnds[i-1].After(until) {
			spans = append(spans, gapSpan{okEnds[i-1], okEnds[i]})
		}
		if d > r.gapRun {
			r.gapRun = d
		}
		if d > r.gap && okEnds[i].After(trigger) && !okEnds[i-1].After(until) {
			r.gap, r.gapAt = d, okEnds[i-1].Sub(trigger)
		}
	}
	slices.SortFunc(spans, func(a, b gapSpan) int { return cmp.Compare(b.to.Sub(b.from), a.to.Sub(a.from)) })
	r.top = spans[:min(3, len(spans))]
	r.p50Before, r.p99Before = quantile(before, 0.5), quantile(before, 0.99)
	r.p50During, r.p99During = quantile(during, 0.5), quantile(during, 0.99)
	// A session survives when its counter never went back (every answer
	// above the one before: no acknowledged bump was lost at the switch)
	// and the data plane that serves after the update holds at least what
	// it last acknowledged (an answer lost in flight may have counted one
	// more).
	client := &http.Client{Timeout: 5 * time.Second}
	for id, want := range l.acked {
		r.total++
		body, err := do(client, http.MethodGet, "http://"+final+"/session/"+id)
		got, perr := strconv.ParseInt(body, 10, 64)
		if err == nil && perr == nil && got >= want && !l.lost[id] {
			r.kept++
		}
	}
	r.flows = flows
	if body, err := do(client, http.MethodGet, "http://"+final+"/flows?n="+strconv.Itoa(flows)); err == nil {
		r.flowsKept, _ = strconv.Atoi(body)
	}
	return r
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// freeAddr returns a loopback address nobody listens on now.
func freeAddr(ip string) (string, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func runBench(ctx context.Context, c config, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "dataplane-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	regionAddr, err := freeAddr("127.0.0.1")
	if err != nil {
		return err
	}
	region, err := startProc(config{addr: regionAddr, dir: dir}, roleRegion)
	if err != nil {
		return err
	}
	defer func() { _ = region.cmd.Process.Kill(); _ = region.cmd.Wait() }()
	if _, err := region.next("ready", 30*time.Second); err != nil {
		return fmt.Errorf("region: %w", err)
	}
	fmt.Fprintf(stdout, "state: %d background flows in the session table besides the clients' sessions (-flows)\n", c.flows)
	pace := "each as fast as it is answered"
	if c.rate > 0 {
		pace = fmt.Sprintf("paced at %.0f requests/s in all", c.rate)
	}
	fmt.Fprintf(stdout, "critical load: %s (-rate)\n", pace)
	fmt.Fprintf(stdout, "load: %d critical clients (%d sessions each, a session bump then a route lookup, over keep-alive connections), %d non-critical clients; %v before the update, %v after it\n",
		criticalClients, sessionsPerClient, noncriticalClients, warmup, after)
	var results []result
	for _, way := range []string{roleUpdraft, roleRestart, roleTableflip} {
		wc := config{dir: dir + "/" + way, region: "http://" + regionAddr + "/", flows: c.flows, rate: c.rate, warmingNice: c.warmingNice, snapshotCPU: c.snapshotCPU}
		if err := os.MkdirAll(wc.dir, 0o755); err != nil {
			return err
		}
		if wc.addr, err = freeAddr("127.0.0.1"); err != nil {
			return err
		}
		if wc.admin, err = freeAddr("127.0.0.1"); err != nil {
			return err
		}
		r, err := benchOne(ctx, way, wc)
		if err != nil {
			return fmt.Errorf("%s: %w", way, err)
		}
		results = append(results, r)
		fmt.Fprintf(stdout, "%-9s critical sent=%d failed=%d gap=%v (at %v; whole run %v) p50/p99 before=%v/%v during=%v/%v sessions=%d/%d flows=%d/%d | non-critical served=%d degraded-or-failed=%d | switch took %v%s\n",
			r.way, r.sent, r.failed, r.gap.Round(10*time.Microsecond), r.gapAt.Round(time.Millisecond), r.gapRun.Round(10*time.Microsecond), r.p50Before.Round(time.Microsecond), r.p99Before.Round(time.Microsecond),
			r.p50During.Round(time.Microsecond), r.p99During.Round(time.Microsecond), r.kept, r.total, r.flowsKept, r.flows, r.ncServed, r.ncDegraded, r.switchTook.Round(time.Millisecond), r.note)
		fmt.Fprintln(stdout, r.breakdown())
		if c.timeline {
			fmt.Fprintln(stdout, r.latencies())
		}
	}
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
	}
	u, rs, tf := results[0], results[1], results[2]
	ratio := float64(rs.gap) / float64(max(u.gap, time.Microsecond))
	fmt.Fprintf(stdout, "critical: updraft failed=%d gap=%sms sessions=%d/%d | restart failed=%d gap=%sms sessions=%d/%d | tableflip failed=%d gap=%sms sessions=%d/%d | ratio=%.1f\n",
		u.failed, ms(u.gap), u.kept, u.total, rs.failed, ms(rs.gap), rs.kept, rs.total, tf.failed, ms(tf.gap), tf.kept, tf.total, ratio)
	return nil
}

// benchOne starts the data plane the way names, loads it, runs one
// update, and measures.
func benchOne(ctx context.Context, way string, c config) (result, error) {
	p, err := startProc(c, way)
	if err != nil {
		return result{}, err
	}
	procs := []*proc{p}
	var successor int // the pid of the process that serves after the update, when another process started it
	defer func() {
		if successor > 0 {
			_ = syscall.Kill(successor, syscall.SIGTERM)
		}
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
	}()
	if _, err := p.next("ready", 30*time.Second); err != nil {
		return result{}, err
	}
	l := newLoad(c.addr, c.rate)
	l.run()
	time.Sleep(warmup)
	trigger := time.Now()
	var switched time.Time
	note := ""
	var phases []phaseJSON
	switch way {
	case roleUpdraft:
		resp, err := http.Post("http://"+c.admin+"/update", "", nil)
		if err != nil {
			l.halt()
			return result{}, err
		}
		var rep struct {
			Outcome, Err, Report string
			Phases               []phaseJSON
		}
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		phases = rep.Phases
		for _, line := range strings.Split(rep.Report, "\n") {
			for _, what := range []string{"bulk state", "ran at nice", "switch pause"} {
				if i := strings.Index(line, what); i >= 0 {
					note += "; " + line[i:]
				}
			}
		}
		if rep.Outcome != "committed" {
			l.halt()
			return result{}, fmt.Errorf("update %s: %s\n%s", rep.Outcome, rep.Err, rep.Report)
		}
		ready, err := p.both("ready", "exit", 30*time.Second) // the new process prints on the same pipe
		if err != nil {
			l.halt()
			return result{}, err
		}
		successor, _ = strconv.Atoi(ready["pid"])
		switched = time.Now()
	case roleRestart:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.cmd.Wait()
		procs = nil
		np, err := startProc(c, roleRestart, versionEnv+"=2")
		if err != nil {
			l.halt()
			return result{}, err
		}
		procs = append(procs, np)
		if _, err := np.next("ready", 30*time.Second); err != nil {
			l.halt()
			return result{}, err
		}
		switched = time.Now()
	case roleTableflip:
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		// The new process, tableflip's child, prints on the same pipe;
		// the old one may say it exits first.
		ready, err := p.both("ready", "exit", 30*time.Second)
		if err != nil {
			l.halt()
			return result{}, err
		}
		successor, _ = strconv.Atoi(ready["pid"])
		switched = time.Now()
	}
	_ = ctx
	time.Sleep(after)
	l.halt()
	r := l.result(way, trigger, switched, c.addr, c.flows)
	r.note = note
	r.phases = phases
	return r, nil
}
