package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/updraft-dev/updraft/migrate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "region:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. It prints the address it listens on (useful
// with port 0) as "region NAME listening on http://ADDR".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("region", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.2:8080", "address to listen on")
	region := fs.String("region", "", "name of this region (required)")
	key := fs.String("key", os.Getenv("UPDRAFT_KEY"), "shared HMAC key (default $UPDRAFT_KEY, else the demo key)")
	window := fs.Duration("window", migrate.DefaultWindow, "accepted clock difference for signed requests")
	dedup := fs.String("dedup", "", "file recording the requests served, so a restarted region does not run them again (default: memory only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *region == "" {
		return errors.New("-region is required")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("region", *region)
	if *key == "" {
		*key = DemoKey
		logger.Warn("no -key or UPDRAFT_KEY: using the public demo key; anyone can call this region", "key", DemoKey)
	}
	if len(*key) < migrate.MinKeyBytes {
		return fmt.Errorf("-key is %d bytes; use at least %d", len(*key), migrate.MinKeyBytes)
	}
	h, err := migrate.OpenHandler(migrate.HandlerOptions{Key: []byte(*key), Source: "updraft/region/" + *region, Window: *window,
		DedupPath: *dedup, Logger: logger})
	if err != nil {
		return err
	}
	defer h.Close()
	counters := &migrate.MapState{}
	h.Register("count", Count(counters), counters)
	h.Register("upper", Upper, nil)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "region %s listening on http://%s\n", *region, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintf(stdout, "region %s stopped\n", *region)
	return nil
}

// DemoKey is the key the region uses when given none: the host side of a
// demo passes the same bytes as migrate.Options.Key.
const DemoKey = "updraft-demo-key"

// Count returns the demo "count" function over counters: it adds one to
// the counter named by the payload and returns the new value in decimal.
func Count(counters *migrate.MapState) migrate.Func {
	return func(_ context.Context, payload []byte) ([]byte, error) {
		if len(payload) == 0 {
			return nil, errors.New("count: empty counter name")
		}
		return strconv.AppendInt(nil, counters.Add(string(payload), 1), 10), nil
	}
}

// Upper is the demo "upper" function: the payload in upper case (ASCII).
func Upper(_ context.Context, payload []byte) ([]byte, error) {
	out := make([]byte, len(payload))
	for i, c := range payload {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out, nil
}
