// Command forecast replays real resource-usage traces through the profile
// package's model and through a VPA-style baseline recommender, and prints
// how much each over-reserved (slack) and how often use exceeded the
// reservation (violations), per file and overall.
//
//	go run ./examples/forecast -trace ../shared/traces/bitbrains-rnd-2013-7
//
// Every regular file under DIR (recursively) is read as a Bitbrains or
// Alibaba trace, gzip-compressed or plain. Each 1-hour window is forecast
// from the history before it; the first day of each series is warm-up and
// not scored. The last line is
//
//	overall: model slack=S% violations=V% | baseline slack=S% violations=V%
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile/trace"
)

func main() {
	dir := flag.String("trace", "", "directory of trace files (Bitbrains or Alibaba layout, gzip or plain)")
	window := flag.Duration("window", time.Hour, "forecast window")
	warmup := flag.Duration("warmup", 24*time.Hour, "history before the first scored window")
	quantile := flag.Float64("quantile", 0.95, "model forecast to reserve: 0.5, 0.95 or 0.99")
	var base trace.VPA
	flag.Float64Var(&base.Percentile, "baseline-percentile", 0.9, "baseline recommender's target percentile")
	flag.Float64Var(&base.Margin, "baseline-margin", 0.15, "baseline recommender's safety margin (0.15 = +15%)")
	flag.DurationVar(&base.HalfLife, "baseline-halflife", 24*time.Hour, "baseline recommender's histogram half-life")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "forecast: -trace DIR is required")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), os.Stdout, *dir, *window, *warmup, *quantile, base); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run replays every trace under dir; base configures the baseline (a
// fresh copy per series).
func run(ctx context.Context, out io.Writer, dir string, window, warmup time.Duration, quantile float64, base trace.VPA) error {
	files, err := traceFiles(dir)
	if err != nil {
		return err
	}
	opts := trace.ReplayOptions{Window: window, Warmup: warmup}
	model, baseline := trace.Score{}, trace.Score{}
	var stats trace.Stats
	for _, file := range files {
		series, st, err := trace.ReadFile(file)
		if err != nil {
			return fmt.Errorf("forecast: %w", err)
		}
		stats.Add(st)
		fileModel, fileBase := trace.Score{}, trace.Score{}
		for _, s := range series {
			m, err := trace.NewModel(trace.ModelOptions{Quantile: quantile})
			if err != nil {
				return fmt.Errorf("forecast: %w", err)
			}
			ms, err := trace.Replay(ctx, s, m, opts)
			if err != nil {
				return fmt.Errorf("forecast: %w", err)
			}
			vpa := base // copy the settings, not the learnt state
			bs, err := trace.Replay(ctx, s, &vpa, opts)
			if err != nil {
				return fmt.Errorf("forecast: %w", err)
			}
			fileModel.Add(ms)
			fileBase.Add(bs)
		}
		rel, _ := filepath.Rel(dir, file)
		fmt.Fprintf(out, "%s (%d series, %d rows, %d skipped): %s\n", rel, len(series), st.Rows, st.Broken+st.Duplicates+st.Off, line(fileModel, fileBase))
		model.Add(fileModel)
		baseline.Add(fileBase)
	}
	fmt.Fprintf(out, "rows: %d read, %d broken, %d duplicate timestamps, %d machine-off rows skipped, %d kept without an out-of-range field\n", stats.Rows, stats.Broken, stats.Duplicates, stats.Off, stats.Partial)
	for _, p := range stats.Problems {
		fmt.Fprintf(out, "  skipped %s\n", p)
	}
	for _, r := range slices.Sorted(func(yield func(string) bool) {
		for r := range model {
			if !yield(string(r)) {
				return
			}
		}
	}) {
		m, b := model[hal.Resource(r)], baseline[hal.Resource(r)]
		fmt.Fprintf(out, "%s: %s (%d points)\n", r, line(trace.Score{hal.Resource(r): m}, trace.Score{hal.Resource(r): b}), m.Points)
	}
	fmt.Fprintf(out, "overall: %s\n", line(model, baseline))
	return nil
}

func line(model, base trace.Score) string {
	return fmt.Sprintf("model slack=%s violations=%s | baseline slack=%s violations=%s",
		pct(model.Slack(), 1), pct(model.ViolationRate(), 2), pct(base.Slack(), 1), pct(base.ViolationRate(), 2))
}

// pct formats a share as a percentage, or n/a when nothing was scored.
func pct(x float64, decimals int) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return strconv.FormatFloat(100*x, 'f', decimals, 64) + "%"
}

// traceFiles lists the regular files under dir, sorted, skipping READMEs
// and hidden files.
func traceFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if strings.HasPrefix(name, ".") && path != dir {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") || strings.HasPrefix(strings.ToUpper(name), "README") {
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("forecast: %w", err)
	}
	if len(files) == 0 {
		return nil, errors.New("forecast: no trace files in " + dir)
	}
	return traceFilesSorted(files)
}

// traceFilesSorted sorts files in natural order ("2" before "10").
func traceFilesSorted(files []string) ([]string, error) {
	slices.SortFunc(files, naturalLess)
	return files, nil
}

// naturalLess orders "2.csv.gz" before "10.csv.gz".
func naturalLess(a, b string) int {
	da, db := filepath.Dir(a), filepath.Dir(b)
	if da != db {
		return strings.Compare(da, db)
	}
	na, nb := leadingNumber(filepath.Base(a)), leadingNumber(filepath.Base(b))
	if na != nb && na >= 0 && nb >= 0 {
		return na - nb
	}
	return strings.Compare(a, b)
}

func leadingNumber(s string) int {
	n, digits := 0, 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if digits == 0 {
		return -1
	}
	return n
}
