// Command forecast replays real resource-usage traces through the profile
// package's model, the Kubernetes VPA recommender (re-implemented in
// profile/trace, at its defaults and with a 0.001-core first CPU bucket)
// and the rule "p95 of the last 2 hours × 1.2", and prints, per resource,
// how much each over-reserved (gross slack: reserved beyond use, over
// use) and how often use exceeded the reservation (violations), how far
// the overruns went, and how both spread across machines. Beside the aim
// it prints its anchor ([trace.KnownMeanCurve]): the slack a reservation
// told each window's mean use in advance needs at the VPA recommender's
// violation rate.
//
//	go run ./examples/forecast -trace ../shared/traces/bitbrains-rnd-2013-7
//
// -trace takes directories or files, comma-separated; every regular file
// under a directory is read as a Bitbrains or Alibaba trace, gzip or
// plain. Each window (-window, an hour) is forecast from the history before
// it; the first day (-warmup) of each series is not scored. -sweep also
// traces each method's trade-off between slack and violations by varying
// its margin or cost, and -plot PREFIX draws those curves into
// PREFIX-cpu.png and PREFIX-memory.png. The last three lines are
//
//	cpu: model slack=S% violations=V% | vpa slack=S% violations=V%
//	memory: model slack=S% violations=V% | vpa slack=S% violations=V%
//	overall: model slack=S% violations=V% | baseline slack=S% violations=V%
//
// where the baseline is the VPA recommender at its defaults and overall
// slack is the mean of the two resources' gross slack.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/profile/trace"
)

// config is everything a run depends on.
type config struct {
	paths          []string
	replay         trace.ReplayOptions
	model          trace.ModelOptions
	vpa            trace.VPAConfig
	window         trace.WindowConfig
	sweep          bool
	plot           string // file prefix of the sweep plots; empty: none
	cpuCostFlag    float64
	memoryCostFlag float64
}

func main() {
	var c config
	paths := flag.String("trace", "", "trace directories or files, comma-separated (Bitbrains or Alibaba layout, gzip or plain)")
	flag.DurationVar(&c.replay.Window, "window", time.Hour, "forecast window")
	flag.DurationVar(&c.replay.Warmup, "warmup", 24*time.Hour, "history before the first scored window")
	flag.Float64Var(&c.model.Quantile, "quantile", 0.95, "model forecast to reserve: 0.5, 0.95 or 0.99")
	cpuCost := flag.Float64("cpu-cost", profile.DefaultCPUOverrunCost, "model: price of a CPU overrun, in mean usages over-reserved for one observation")
	memoryCost := flag.Float64("memory-cost", profile.DefaultMemoryOverrunCost, "model: price of a memory overrun, likewise")
	memoryPeakSpan := flag.Duration("memory-peak-span", profile.DefaultMemoryPeakSpan, "model: memory is never reserved below the peak of this span times 1+headroom (0 = none)")
	memoryHeadroom := flag.Float64("memory-headroom", profile.DefaultMemoryHeadroom, "model: least share kept above the memory prediction (0 = none)")
	c.vpa = trace.DefaultVPAConfig()
	flag.Float64Var(&c.vpa.SafetyMargin, "vpa-margin", c.vpa.SafetyMargin, "VPA recommender's safety margin (0.15 = +15%; 0 = none)")
	flag.Float64Var(&c.vpa.CPUFirstBucket, "vpa-cpu-bucket", c.vpa.CPUFirstBucket, "VPA recommender's first CPU bucket, cores, for the \"vpa\" column")
	c.window = trace.DefaultWindowConfig()
	flag.Float64Var(&c.window.Factor, "window-factor", c.window.Factor, "moving-window rule's factor (1 = none)")
	flag.BoolVar(&c.sweep, "sweep", false, "also trace each method's slack/violations trade-off")
	flag.StringVar(&c.plot, "plot", "", "with -sweep: write the curves to PREFIX-cpu.png and PREFIX-memory.png")
	flag.Parse()
	if *paths == "" {
		fmt.Fprintln(os.Stderr, "forecast: -trace PATH is required")
		flag.Usage()
		os.Exit(2)
	}
	c.paths = strings.Split(*paths, ",")
	c.model.Analyzer = profile.Options{
		OverrunCost: map[hal.Resource]float64{hal.CPU: *cpuCost, hal.Memory: *memoryCost},
		Headroom:    map[hal.Resource]float64{hal.Memory: noneIfZero(*memoryHeadroom)},
		PeakSpan:    map[hal.Resource]time.Duration{hal.Memory: spanNoneIfZero(*memoryPeakSpan)},
	}
	c.cpuCostFlag, c.memoryCostFlag = *cpuCost, *memoryCost
	if err := run(context.Background(), os.Stdout, c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run reads the traces, evaluates every method and prints the report.
func run(ctx context.Context, out io.Writer, c config) error {
	var files []string
	for _, p := range c.paths {
		f, err := trace.FindFiles(p)
		if err != nil {
			return fmt.Errorf("forecast: %w", err)
		}
		files = append(files, f...)
	}
	methods := trace.StandardMethods(c.model, c.vpa, c.window)
	var (
		all   []trace.Series
		stats trace.Stats
		ev    = &trace.Evaluation{}
	)
	for _, file := range files {
		series, st, err := trace.ReadFile(file)
		stats.Add(st)
		if err != nil {
			return fmt.Errorf("forecast: %w", err)
		}
		fe, err := trace.Evaluate(ctx, series, methods, c.replay)
		if err != nil {
			return fmt.Errorf("forecast: %w", err)
		}
		fmt.Fprintf(out, "%s (%d series, %d rows, %d skipped): %s\n", file, len(series), st.Rows, st.Broken+st.Duplicates+st.Off,
			pair(fe.Total(0), fe.Total(1), "model", "vpa"))
		all = append(all, series...)
		ev.Methods = fe.Methods
		ev.Series = append(ev.Series, fe.Series...)
	}
	fmt.Fprintf(out, "rows: %d read, %d broken, %d duplicate timestamps, %d machine-off rows skipped, %d kept without an out-of-range field\n",
		stats.Rows, stats.Broken, stats.Duplicates, stats.Off, stats.Partial)
	for _, p := range stats.Problems {
		fmt.Fprintf(out, "  skipped %s\n", p)
	}
	resources := []hal.Resource{hal.CPU, hal.Memory}
	printDetails(out, ev, resources)
	fmt.Fprintln(out, "aim per resource (model against vpa at its defaults: no more violations, at most 60% of its slack):")
	aims := ev.Aim(0, 1)
	for _, a := range aims {
		fmt.Fprintf(out, "  %s\n", a)
	}
	fmt.Fprintln(out, "anchor per resource (what the aim asks, against a reservation told each window's mean use in advance):")
	for _, a := range trace.Anchors(all, aims, c.replay) {
		fmt.Fprintf(out, "  %s\n", a)
	}
	if c.sweep {
		curves, err := sweep(ctx, all, c)
		if err != nil {
			return err
		}
		printCurves(out, curves, resources)
		printModelAtReference(out, curves[0], aims)
		if c.plot != "" {
			if err := plotCurves(curves, resources, c.plot); err != nil {
				return fmt.Errorf("forecast: %w", err)
			}
			fmt.Fprintf(out, "curves drawn in %s-cpu.png and %s-memory.png\n", c.plot, c.plot)
		}
	}
	model, vpa := ev.Total(0), ev.Total(1)
	for _, r := range resources {
		fmt.Fprintf(out, "%s: %s\n", r, pair(trace.Score{r: model[r]}, trace.Score{r: vpa[r]}, "model", "vpa"))
	}
	fmt.Fprintf(out, "overall: %s\n", pair(model, vpa, "model", "baseline"))
	return nil
}

// printDetails prints, per resource and method, the pooled figures and the
// spread across series.
func printDetails(out io.Writer, ev *trace.Evaluation, resources []hal.Resource) {
	fmt.Fprintf(out, "per resource, pooled over %d series (slack is gross; overrun is the mean share of use left uncovered at a violation; short is all uncovered use over all use):\n", len(ev.Series))
	for _, r := range resources {
		for m, name := range ev.Methods {
			rs := ev.Total(m)[r]
			sp := ev.Spread(m, r)
			fmt.Fprintf(out, "  %-6s %-11s slack=%s violations=%s overrun=%s short=%s | per series: slack p10/p50/p90=%s/%s/%s violations p50/p90/max=%s/%s/%s (worst %s)\n",
				r, name, pct(rs.Slack(), 1), pct(rs.ViolationRate(), 2), pct(rs.MeanOverrun(), 1), pct(rs.ShortShare(), 2),
				pct(sp.SlackP10, 1), pct(sp.SlackP50, 1), pct(sp.SlackP90, 1),
				pct(sp.ViolationsP50, 2), pct(sp.ViolationsP90, 2), pct(sp.Max, 2), cmp.Or(sp.Worst, "none"))
		}
	}
}

func pair(a, b trace.Score, aName, bName string) string {
	return fmt.Sprintf("%s slack=%s violations=%s | %s slack=%s violations=%s",
		aName, pct(a.Slack(), 1), pct(a.ViolationRate(), 2), bName, pct(b.Slack(), 1), pct(b.ViolationRate(), 2))
}

// pct formats a share as a percentage, or n/a when nothing was scored.
func pct(x float64, decimals int) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return strconv.FormatFloat(100*x, 'f', decimals, 64) + "%"
}
