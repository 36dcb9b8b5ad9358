package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// regionKey signs the calls to the region; a real host takes it from its
// secrets.
var regionKey = []byte("dataplane-example-region-key-0123")

func version() string {
	if v := os.Getenv(versionEnv); v != "" {
		return v
	}
	return "1"
}

func nextVersion() string {
	n, _ := strconv.Atoi(version())
	return strconv.Itoa(n + 1)
}

// brokenFile, when it exists as a new version starts, makes that version
// fail its health check: how the example plays a bad release.
func brokenFile(dir string) string { return filepath.Join(dir, "next-version-is-broken") }

// serveUpdraft is the data plane wired to updraft, as the README shows.
func serveUpdraft(ctx context.Context, c config, stdout io.Writer) error {
	up, err := updraft.NewSelfUpdate(updraft.SelfUpdateOptions{
		Env:          []string{versionEnv + "=" + nextVersion(), roleEnv + "=" + roleUpdraft},
		Args:         append([]string{}, os.Args[1:]...),
		ReadyTimeout: 30 * time.Second, DrainTimeout: 5 * time.Second,
		WarmingNice: c.warmingNice,
	})
	if err != nil {
		return err
	}
	ln, err := up.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	// The admin port is not handed over: the old process must answer the
	// update request that is switching it. Both processes bind it with
	// SO_REUSEPORT for the moment they overlap.
	adminLn, err := reusePortListen(c.admin)
	if err != nil {
		return err
	}
	broken := false
	if _, err := os.Stat(brokenFile(c.dir)); err == nil && up.Inherited() {
		broken = true
	}
	p, err := newPlane(version())
	if err != nil {
		return err
	}
	if !up.Inherited() {
		p.preload(c.flows) // a new process that takes over gets the table from the old one
	}
	degrader, err := degrade.New(degrade.Options{Functions: []string{"accesslog", "usage"}})
	if err != nil {
		return err
	}
	for _, d := range []string{"store", "leases"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			return err
		}
	}
	store, err := snapshot.NewFileStore(filepath.Join(c.dir, "store"), snapshot.FileStoreOptions{})
	if err != nil {
		return err
	}
	functions := []string{"route", "conntrack", "accesslog", "usage"}
	dev, err := openDevice(c, up.Inherited(), functions)
	if err != nil {
		return err
	}
	// The functions claim shares of the machine, so that on any machine
	// the update has to move usage reporting away and throttle the access
	// log to keep a reserve for the critical ones.
	capacity, err := dev.driver.Capacity(ctx)
	if err != nil {
		return err
	}
	share := func(cpu, memory float64) hal.Vector {
		return hal.Vector{hal.CPU: cpu * capacity[hal.CPU], hal.Memory: memory * capacity[hal.Memory]}
	}
	opts := updraft.Options{Store: store, Degrader: degrader, AdaptiveDegrade: true, AppVersion: "dataplane", Holder: fmt.Sprintf("dataplane v%s pid %d", version(), os.Getpid()),
		// The snapshot is taken while this process serves: paced, it
		// leaves the cores to the serving goroutines.
		SnapshotOptions: snapshot.Options{CPUShare: c.snapshotCPU}}
	if c.region != "" {
		target, err := migrate.NewCloudEventsTarget("region", c.region, migrate.CloudEventsOptions{Region: "region", Key: regionKey})
		if err != nil {
			return err
		}
		mover, err := migrate.New([]migrate.Target{target}, migrate.Options{BufferDir: filepath.Join(c.dir, "leases")})
		if err != nil {
			return err
		}
		opts.Migrator = updraft.Mover(mover)
	}
	addr := ln.Addr().String()
	// The checks run in the old process and judge the new one through
	// its socket: routes answer, and the new version says it is healthy.
	opts.Checks = []validate.Check{
		validate.Func("routes answer", func(ctx context.Context) error {
			got, err := get(ctx, "http://"+addr+"/route?dst=10.1.2.3")
			if err == nil && got != "eth1" {
				err = fmt.Errorf("10.1.2.3 routes to %q, want eth1", got)
			}
			return err
		}),
		validate.Func("new version healthy", func(ctx context.Context) error {
			_, err := get(ctx, "http://"+addr+"/health")
			return err
		}),
	}
	orch, err := updraft.New([]updraft.Function{
		{Name: functions[0], Criticality: updraft.Critical, EntryPoint: true, DependsOn: []string{"conntrack"}, State: p.routes,
			Demand: share(0.25, 0.125)},
		{Name: functions[1], State: p.sessions, Demand: share(0.25, 0.125)},
		{Name: functions[2], Criticality: updraft.NonCritical, Demand: share(0.5, 0),
			Degrade: &degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 50, Burst: 50}},
		{Name: functions[3], Criticality: updraft.NonCritical, Func: p.countUsage, Demand: share(0.5, 0),
			Remote: &updraft.Remote{State: p.usage}, Degrade: &degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 50, Burst: 50}},
	}, dev.driver, opts)
	if err != nil {
		return err
	}

	data := p.handler(degrader, orch.Invoke)
	mux := http.NewServeMux()
	mux.Handle("/", data)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if broken {
			http.Error(w, "version "+p.version+" is broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	srv := &http.Server{Handler: mux}
	up.HTTP(srv)

	reg := prometheus.NewRegistry()
	reg.MustRegister(orch.Collector(), degrader.Collector())
	admin := http.NewServeMux()
	admin.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	admin.Handle("GET /status", degrader.StatusHandler())
	update := func(ctx context.Context, makeBroken bool) (*updraft.Report, error) {
		if makeBroken {
			if err := os.WriteFile(brokenFile(c.dir), nil, 0o644); err != nil {
				return nil, err
			}
			defer os.Remove(brokenFile(c.dir))
		}
		return orch.PrepareForUpdate(ctx, up)
	}
	admin.HandleFunc("POST /update", func(w http.ResponseWriter, r *http.Request) {
		report, err := update(r.Context(), r.URL.Query().Get("broken") != "")
		writeReport(w, report, err)
	})
	admin.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) { writeReport(w, up.Report(), nil) })
	adminSrv := &http.Server{Handler: admin}
	go func() { _ = srv.Serve(ln) }()
	go func() { _ = adminSrv.Serve(adminLn) }()

	report, err := up.Start(ctx, orch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dataplane: start:", err)
	}
	if report != nil && report.Outcome != updraft.NothingToResume {
		fmt.Fprintf(os.Stderr, "dataplane: resumed an interrupted update:\n%s\n", report)
	}
	fmt.Fprintf(stdout, "ready role=updraft version=%s pid=%d data=%s admin=%s device=%s\n", p.version, os.Getpid(), addr, adminLn.Addr(), dev.what)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stopping := false
	for {
		select {
		case <-hup:
			go func() {
				report, err := update(context.Background(), false)
				fmt.Fprintf(os.Stderr, "dataplane: update on SIGHUP: %v\n%s\n", err, report)
			}()
			continue
		case <-up.Done():
		case <-ctx.Done():
			stopping = true
		}
		break
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	_ = adminSrv.Shutdown(shut)
	if stopping {
		// Stopped for good, not handed over: nobody serves from the
		// cgroup any more.
		if err := leaveCgroup(c.dir); err != nil {
			fmt.Fprintln(os.Stderr, "dataplane: leave the cgroup:", err)
		}
	}
	fmt.Fprintf(stdout, "exit role=updraft version=%s pid=%d\n", p.version, os.Getpid())
	return nil
}

// phaseJSON is one line of a report's timeline.
type phaseJSON struct {
	Phase   string `json:"phase"`
	Outcome string `json:"outcome"`
	Start   int64  `json:"start_unix_nano"`
	Nanos   int64  `json:"duration_ns"`
}

// writeReport answers an update request: the outcome, the error and the
// report as text, in JSON.
func writeReport(w http.ResponseWriter, report *updraft.Report, err error) {
	out := struct {
		Outcome string `json:"outcome"`
		Err     string `json:"err,omitempty"`
		Report  string `json:"report"`
		// Phases is the timeline with wall-clock starts (Unix nanoseconds),
		// so a client can lay its own observations beside it.
		Phases []phaseJSON `json:"phases,omitempty"`
		Flags  []string    `json:"flags,omitempty"`
	}{}
	if report != nil {
		out.Outcome, out.Report, out.Flags = string(report.Outcome), report.String(), report.Flags
		for _, ph := range report.Phases {
			out.Phases = append(out.Phases, phaseJSON{Phase: string(ph.Phase), Outcome: string(ph.Outcome), Start: ph.Start.UnixNano(), Nanos: int64(ph.Duration)})
		}
	}
	if err != nil {
		out.Err = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// serveRestart is the first baseline: the same data plane without
// updraft, updated by stopping it (state written to disk at stop) and
// starting the new version (state loaded at start).
func serveRestart(ctx context.Context, c config, stdout io.Writer) error {
	p, err := newPlane(version())
	if err != nil {
		return err
	}
	statePath := filepath.Join(c.dir, "restart-state.gob")
	loaded, err := p.load(statePath)
	if err != nil {
		return err
	}
	if !loaded {
		p.preload(c.flows)
	}
	var ln net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; {
		// The old process may still hold the port a moment.
		if ln, err = net.Listen("tcp", c.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		return err
	}
	degrader, _ := degrade.New(degrade.Options{})
	srv := &http.Server{Handler: p.handler(degrader, func(ctx context.Context, _ string, b []byte) ([]byte, error) { return p.countUsage(ctx, b) })}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stdout, "ready role=restart version=%s pid=%d data=%s\n", p.version, os.Getpid(), ln.Addr())
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut) // in-flight requests finish
	if err := p.save(statePath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exit role=restart version=%s pid=%d\n", p.version, os.Getpid())
	return nil
}

// serveTableflip is the second baseline: tableflip alone, as a careful
// user would use it without updraft. On SIGHUP the old process writes its
// state to a file and asks tableflip for the upgrade; the new process
// inherits the socket, loads the file, and says it is ready; the old one
// then drains and exits.
func serveTableflip(ctx context.Context, c config, stdout io.Writer) error {
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer upg.Stop()
	p, err := newPlane(version())
	if err != nil {
		return err
	}
	statePath := filepath.Join(c.dir, "tableflip-state.gob")
	if upg.HasParent() {
		if _, err := p.load(statePath); err != nil {
			return err
		}
	} else {
		p.preload(c.flows)
	}
	ln, err := upg.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	degrader, _ := degrade.New(degrade.Options{})
	srv := &http.Server{Handler: p.handler(degrader, func(ctx context.Context, _ string, b []byte) ([]byte, error) { return p.countUsage(ctx, b) })}
	go func() { _ = srv.Serve(ln) }()
	if err := upg.Ready(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ready role=tableflip version=%s pid=%d data=%s\n", p.version, os.Getpid(), ln.Addr())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := p.save(statePath); err != nil {
				fmt.Fprintln(os.Stderr, "tableflip: save:", err)
				continue
			}
			os.Setenv(versionEnv, nextVersion())
			if err := upg.Upgrade(); err != nil {
				fmt.Fprintln(os.Stderr, "tableflip: upgrade:", err)
			}
			continue
		case <-upg.Exit():
		case <-ctx.Done():
		}
		break
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	fmt.Fprintf(stdout, "exit role=tableflip version=%s pid=%d\n", p.version, os.Getpid())
	return nil
}

// serveRegion is a region for the benchmark and the tests, as
// examples/region serves one: "usage" counted by client, with its state.
func serveRegion(ctx context.Context, c config, stdout io.Writer) error {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: regionKey})
	st := &migrate.MapState{}
	h.Register("usage", func(_ context.Context, client []byte) ([]byte, error) {
		return strconv.AppendInt(nil, st.Add(string(client), 1), 10), nil
	}, st)
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stdout, "ready role=region pid=%d data=%s\n", os.Getpid(), ln.Addr())
	<-ctx.Done()
	err = srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// reusePortListen listens on address with SO_REUSEADDR and SO_REUSEPORT,
// so that the process that takes over can bind it while this one still
// answers on it.
func reusePortListen(address string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", address)
}
