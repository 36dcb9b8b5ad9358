// Command dataplane is a small but real data plane wired to updraft as the
// README tells a host: an HTTP router on loopback whose critical functions
// (routing over a route table, a session table that clients depend on
// across requests) keep their state in snapshot containers, and whose
// non-critical ones (an access log, usage reporting) are throttled or
// moved to another region during an update. It replaces its own binary
// with updraft.SelfUpdate: POST /update on the admin port (or SIGHUP)
// runs an update and answers with its report.
//
//	go run ./examples/dataplane                      # serve on 127.0.0.1:8080, admin on 127.0.0.1:8081
//	curl -X POST 127.0.0.1:8080/session/alice        # a session's packet counter
//	curl '127.0.0.1:8080/route?dst=10.1.2.3'         # the next hop
//	curl -X POST 127.0.0.1:8081/update               # self-update; prints the report
//	curl -X POST '127.0.0.1:8081/update?broken=1'    # a new version that fails validation: rolled back
//	go run ./examples/dataplane -bench               # the headline benchmark (see BENCHMARKS.md)
//
// The device is hal/linux when the data plane runs as root: its functions
// share the process's own cgroup, which it creates at a fresh start and
// its successors inherit (see openDevice). Otherwise it is hal/sim with its
// state in the data directory; the ready line says which, and why. Usage
// reporting moves to the region given by -region (run examples/region);
// without one it is throttled.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dataplane:", err)
		os.Exit(1)
	}
}

// config is what the flags and the environment set.
type config struct {
	addr, admin, dir, region string
	device                   string
	bench                    bool
	flows                    int
	rate                     float64
	warmingNice              int
	snapshotCPU              float64
	timeline                 bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dataplane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "data-plane listen address")
	fs.StringVar(&c.admin, "admin", "127.0.0.1:8081", "admin listen address (update, report, status, metrics)")
	fs.StringVar(&c.dir, "dir", "", "directory for the snapshot store, journal, device state and leases (default: a new temporary one)")
	fs.StringVar(&c.device, "device", "auto", "the hal driver: linux (cgroups; needs root), sim, or auto (linux when it can, sim otherwise)")
	fs.StringVar(&c.region, "region", "", "URL of a region serving \"count\" (examples/region); empty: usage is throttled, not moved")
	fs.IntVar(&c.flows, "flows", defaultFlows, "background flows preloaded into the session table at a fresh start (the default is Linux's default connection-tracking table size, nf_conntrack_max)")
	fs.Float64Var(&c.rate, "rate", 4000, "with -bench: critical requests per second, all clients together, each client on a fixed schedule; 0 sends each request as soon as the one before is answered")
	fs.Float64Var(&c.snapshotCPU, "snapshot-cpu", 0.25, "the share of one core the update's snapshot may take while the data plane serves (snapshot.Options.CPUShare; 0: no pacing)")
	fs.IntVar(&c.warmingNice, "warming-nice", 0, "how much lower the new process's CPU priority is while it starts and takes the bulk state (updraft.SelfUpdateOptions.WarmingNice; 0: the library's default, -1: off)")
	fs.BoolVar(&c.timeline, "timeline", false, "with -bench: print, for each way, the worst critical latency in each 20 ms from the trigger")
	fs.BoolVar(&c.bench, "bench", false, "run the headline benchmark: updraft's self-update against a plain restart and tableflip alone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.device != "auto" && c.device != "linux" && c.device != "sim" {
		return fmt.Errorf("flag -device: %q is not auto, linux or sim", c.device)
	}
	if c.rate < 0 || math.IsNaN(c.rate) || math.IsInf(c.rate, 0) {
		return fmt.Errorf("flag -rate: %v is not a rate", c.rate)
	}
	if c.flows < 0 {
		return fmt.Errorf("flag -flows: %d is negative", c.flows)
	}
	switch role := os.Getenv(roleEnv); role {
	case "", roleUpdraft:
		if c.bench {
			return runBench(ctx, c, stdout)
		}
		if c.dir == "" {
			dir, err := os.MkdirTemp("", "dataplane-")
			if err != nil {
				return err
			}
			c.dir = dir
		}
		return serveUpdraft(ctx, c, stdout)
	case roleRestart:
		return serveRestart(ctx, c, stdout)
	case roleTableflip:
		return serveTableflip(ctx, c, stdout)
	case roleRegion:
		return serveRegion(ctx, c, stdout)
	default:
		return errors.New("unknown " + roleEnv + " " + role)
	}
}

// Roles of the same binary: the updraft-wired data plane, the two
// baselines of the benchmark, and a region.
const (
	roleEnv       = "DATAPLANE_ROLE"
	roleUpdraft   = "updraft"
	roleRestart   = "restart"
	roleTableflip = "tableflip"
	roleRegion    = "region"
	versionEnv    = "DATAPLANE_VERSION"
)

// defaultFlows is how many flows the session table holds besides the
// clients' sessions: 262144, the size of Linux's connection-tracking table
// by default (net.netfilter.nf_conntrack_max on a host with 4 GiB or more).
const defaultFlows = 262144
