package trace

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// The machine size [ReadAlibaba] assumes; machine_usage gives only
// percentages. 96 cores is the CPU count cluster-trace-v2018 documents
// for its machines; its memory size is normalised (to 100), so one
// normalised unit is taken as 1 GiB, an assumption. The absolute size
// matters only to a recommender with absolute floors or bucket sizes (the
// VPA's 10 mcores and 10 MB first buckets and 25 mcores and 250 MiB
// minimums, all far below what these machines use).
const (
	AlibabaCores  = 96
	AlibabaMemory = 100 << 30
)

// Step is the fixed interval every series is resampled to.
const Step = 5 * time.Minute

// maxProblems is how many broken lines Stats describes in full.
const maxProblems = 5

// Point is the usage of one machine during one step.
type Point struct {
	Time  time.Time
	Usage hal.Vector
}

// Series is one machine's usage over time at a fixed step, in time order
// with no two points at the same time.
type Series struct {
	Name   string // file name, or file name and machine id for Alibaba
	Points []Point
}

// Stats counts what reading a trace kept and skipped.
type Stats struct {
	Rows       int      // data rows read
	Broken     int      // rows that could not be parsed, skipped
	Duplicates int      // rows whose timestamp was already seen, dropped
	Off        int      // rows of a machine reporting all-zero usage, skipped
	Partial    int      // rows kept without a field that was out of range (Alibaba disk_io_percent)
	Problems   []string // file:line and reason of the first broken rows
}

func (s *Stats) broken(file string, line int, err error) {
	s.Broken++
	if len(s.Problems) < maxProblems {
		s.Problems = append(s.Problems, fmt.Sprintf("%s:%d: %v", file, line, err))
	}
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Rows += o.Rows
	s.Broken += o.Broken
	s.Duplicates += o.Duplicates
	s.Off += o.Off
	s.Partial += o.Partial
	for _, p := range o.Problems {
		if len(s.Problems) < maxProblems {
			s.Problems = append(s.Problems, p)
		}
	}
}

// ErrUnknownLayout is returned (wrapped, naming the file) when a file is
// neither Bitbrains nor Alibaba. Check with errors.Is.
var ErrUnknownLayout = errors.New("trace: unknown layout")

// ReadFile opens path (gzip or plain), detects its layout and reads it.
func ReadFile(path string) ([]Series, Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Stats{}, fmt.Errorf("trace: %w", err)
	}
	defer f.Close()
	return Read(f, filepath.Base(path))
}

// Read reads a trace from r, gzip-compressed or plain, detecting its
// layout from the first line. name labels the series and error messages.
func Read(r io.Reader, name string) ([]Series, Stats, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(2)
	var in io.Reader = br
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Stats{}, fmt.Errorf("trace: %s: gzip: %w", name, err)
		}
		defer zr.Close()
		in = zr
	}
	in2 := bufio.NewReader(in)
	head, _ := in2.Peek(64)
	switch {
	case bytes.HasPrefix(head, []byte("Timestamp")):
		s, st, err := ReadBitbrains(in2, name)
		if err != nil {
			return nil, st, err
		}
		return []Series{s}, st, nil
	case bytes.HasPrefix(head, []byte("m_")):
		return ReadAlibaba(in2, name)
	default:
		return nil, Stats{}, fmt.Errorf("%w: %s: first line %q is neither a Bitbrains header nor an Alibaba machine_usage row", ErrUnknownLayout, name, firstLine(head))
	}
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// row is one parsed line before resampling.
type row struct {
	t     int64 // seconds
	usage hal.Vector
}

// ReadBitbrains reads one Bitbrains GWA-T-12 VM file (plain text). CPU is
// reported in cores (usage MHz over the MHz of one provisioned core),
// memory in bytes, I/O as disk read+write in bytes/s. A read error or a
// missing header is an error naming the file; broken rows are skipped and
// counted.
func ReadBitbrains(r io.Reader, name string) (Series, Stats, error) {
	var st Stats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return Series{}, st, fmt.Errorf("trace: %s:1: %w", name, err)
		}
		return Series{}, st, fmt.Errorf("trace: %s: empty file, expected a Bitbrains header", name)
	}
	if !strings.HasPrefix(sc.Text(), "Timestamp") {
		return Series{}, st, fmt.Errorf("%w: %s:1: expected a Bitbrains header starting with \"Timestamp\", got %q", ErrUnknownLayout, name, truncate(sc.Text()))
	}
	var rows []row
	line := 1
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		st.Rows++
		rw, off, err := parseBitbrainsRow(text)
		switch {
		case err != nil:
			st.broken(name, line, err)
		case off:
			st.Off++
		default:
			rows = append(rows, rw)
		}
	}
	if err := sc.Err(); err != nil {
		return Series{}, st, fmt.Errorf("trace: %s:%d: %w", name, line+1, err)
	}
	return Series{Name: name, Points: resample(rows, &st)}, st, nil
}

func parseBitbrainsRow(text string) (row, bool, error) {
	fields := strings.Split(text, ";")
	if len(fields) != 11 {
		return row{}, false, fmt.Errorf("%d fields, want 11", len(fields))
	}
	var v [11]float64
	for i, f := range fields {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return row{}, false, fmt.Errorf("field %d (%s): %q is not a non-negative number", i+1, bitbrainsColumns[i], strings.TrimSpace(f))
		}
		v[i] = x
	}
	cores, capMHz, useMHz, memKB, readKBs, writeKBs := v[1], v[2], v[3], v[6], v[7], v[8]
	if useMHz == 0 && memKB == 0 {
		return row{}, true, nil
	}
	if cores == 0 || capMHz == 0 {
		return row{}, false, fmt.Errorf("CPU usage without provisioned cores or capacity")
	}
	if v[0] > math.MaxInt32*4 {
		return row{}, false, fmt.Errorf("timestamp %v is out of range", v[0])
	}
	return row{t: int64(v[0]), usage: hal.Vector{
		hal.CPU:    useMHz / (capMHz / cores),
		hal.Memory: memKB * 1024,
		hal.IO:     (readKBs + writeKBs) * 1024,
	}}, false, nil
}

var bitbrainsColumns = [11]string{
	"timestamp", "CPU cores", "CPU capacity provisioned", "CPU usage MHz", "CPU usage %",
	"memory capacity provisioned", "memory usage", "disk read", "disk write",
	"network received", "network transmitted",
}

// ReadAlibaba reads Alibaba cluster-trace-v2018 machine_usage rows (plain
// text, no header) and returns one series per machine, named
// "name/machine", sorted by name. The trace gives CPU and memory as
// percentages of the machine; they are converted to cores and bytes of a
// machine of [AlibabaCores] cores and [AlibabaMemory] bytes, so that
// recommenders with absolute floors and bucket sizes (the VPA's) see the
// units they are built for. I/O is disk_io_percent / 100, a share.
func ReadAlibaba(r io.Reader, name string) ([]Series, Stats, error) {
	var st Stats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	rows := make(map[string][]row)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		st.Rows++
		machine, rw, off, partial, err := parseAlibabaRow(text)
		if partial {
			st.Partial++
		}
		switch {
		case err != nil:
			st.broken(name, line, err)
		case off:
			st.Off++
		default:
			rows[machine] = append(rows[machine], rw)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, st, fmt.Errorf("trace: %s:%d: %w", name, line+1, err)
	}
	if len(rows) == 0 && st.Rows > 0 {
		return nil, st, fmt.Errorf("trace: %s: none of %d rows could be read; first problem: %s", name, st.Rows, strings.Join(st.Problems[:min(1, len(st.Problems))], ""))
	}
	machines := make([]string, 0, len(rows))
	for m := range rows {
		machines = append(machines, m)
	}
	slices.Sort(machines)
	out := make([]Series, 0, len(machines))
	for _, m := range machines {
		out = append(out, Series{Name: name + "/" + m, Points: resample(rows[m], &st)})
	}
	return out, st, nil
}

// parseAlibabaRow parses one machine_usage row. A disk_io_percent outside
// 0..100 (the trace has -1 and 101) drops only that field: partial is true.
func parseAlibabaRow(text string) (machine string, rw row, off, partial bool, err error) {
	fields := strings.Split(text, ",")
	if len(fields) != 9 {
		return "", row{}, false, false, fmt.Errorf("%d fields, want 9", len(fields))
	}
	machine = strings.TrimSpace(fields[0])
	if machine == "" {
		return "", row{}, false, false, errors.New("empty machine_id")
	}
	t, err := strconv.ParseInt(strings.TrimSpace(fields[1]), 10, 64)
	if err != nil || t < 0 || t > math.MaxInt32*4 {
		return "", row{}, false, false, fmt.Errorf("time_stamp %q is not a non-negative number of seconds", fields[1])
	}
	pct := func(i int, col string) (float64, error) {
		s := strings.TrimSpace(fields[i])
		if s == "" {
			return 0, fmt.Errorf("%s is empty", col)
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || x < 0 || x > 100 {
			return 0, fmt.Errorf("%s %q is not a percentage", col, s)
		}
		return x / 100, nil
	}
	cpu, err := pct(2, "cpu_util_percent")
	if err != nil {
		return "", row{}, false, false, err
	}
	mem, err := pct(3, "mem_util_percent")
	if err != nil {
		return "", row{}, false, false, err
	}
	if cpu == 0 && mem == 0 {
		return machine, row{}, true, false, nil
	}
	usage := hal.Vector{hal.CPU: cpu * AlibabaCores, hal.Memory: mem * AlibabaMemory}
	if strings.TrimSpace(fields[8]) != "" {
		if io, err := pct(8, "disk_io_percent"); err == nil {
			usage[hal.IO] = io
		} else {
			partial = true
		}
	}
	return machine, row{t: t, usage: usage}, false, partial, nil
}

// resample sorts rows, drops duplicate timestamps (counting them) and
// averages the rows inside each Step into one point.
func resample(rows []row, st *Stats) []Point {
	slices.SortStableFunc(rows, func(a, b row) int { return cmp.Compare(a.t, b.t) })
	step := int64(Step / time.Second)
	var out []Point
	var sum hal.Vector
	n := 0
	cur := int64(math.MinInt64)
	flush := func() {
		if n > 0 {
			out = append(out, Point{Time: time.Unix(cur*step, 0).UTC(), Usage: sum.Scale(1 / float64(n))})
		}
	}
	for i, r := range rows {
		if i > 0 && r.t == rows[i-1].t {
			st.Duplicates++
			continue
		}
		b := floorDiv(r.t, step)
		if b != cur {
			flush()
			cur, sum, n = b, hal.Vector{}, 0
		}
		sum = sum.Add(r.usage)
		n++
	}
	flush()
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
