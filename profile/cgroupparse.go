package profile

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// The parsers below read the cgroup files the collector needs. Each takes
// the file's name (for messages) and content, and returns an error naming
// the file and line at fault.

// parseSingleValue reads a file holding one unsigned integer, such as
// cpuacct.usage, memory.current or memory.peak. "max" is rejected: these
// files report usage, never limits.
func parseSingleValue(name string, data []byte) (uint64, error) {
	s := strings.TrimSpace(string(data))
	if s == "" {
		return 0, fmt.Errorf("%s:1: empty, want a number", name)
	}
	if strings.ContainsAny(s, "\n") {
		return 0, fmt.Errorf("%s:2: more than one line, want a single number", name)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s:1: %q is not an unsigned integer", name, truncateText(s))
	}
	return v, nil
}

// parseFlatKeyed reads "key value" lines (cpu.stat, memory.stat) and
// returns the value of key, and whether it was present.
func parseFlatKeyed(name string, data []byte, key string) (uint64, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		k, v, ok := strings.Cut(text, " ")
		if !ok {
			return 0, false, fmt.Errorf("%s:%d: %q is not \"key value\"", name, line, truncateText(text))
		}
		if k != key {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s:%d: value of %s %q is not an unsigned integer", name, line, key, truncateText(v))
		}
		return n, true, nil
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return 0, false, nil
}

// parseIOStatV2 reads cgroup v2 io.stat ("MAJ:MIN rbytes=N wbytes=N ...")
// and returns the bytes read plus written over every device.
func parseIOStatV2(name string, data []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var total uint64
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !isDevice(fields[0]) {
			return 0, fmt.Errorf("%s:%d: %q is not a MAJ:MIN device", name, line, truncateText(fields[0]))
		}
		for _, kv := range fields[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return 0, fmt.Errorf("%s:%d: %q is not key=value", name, line, truncateText(kv))
			}
			if k != "rbytes" && k != "wbytes" {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s:%d: %s=%q is not an unsigned integer", name, line, k, truncateText(v))
			}
			total += n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return total, nil
}

// parseBlkioV1 reads cgroup v1 blkio.throttle.io_service_bytes ("MAJ:MIN
// Read N" ... and a final "Total N") and returns the bytes read plus
// written over every device.
func parseBlkioV1(name string, data []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var total uint64
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 0:
			continue
		case len(fields) == 2 && fields[0] == "Total":
			if _, err := strconv.ParseUint(fields[1], 10, 64); err != nil {
				return 0, fmt.Errorf("%s:%d: Total %q is not an unsigned integer", name, line, truncateText(fields[1]))
			}
			continue
		case len(fields) != 3 || !isDevice(fields[0]):
			return 0, fmt.Errorf("%s:%d: %q is not \"MAJ:MIN Op bytes\"", name, line, truncateText(sc.Text()))
		}
		n, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s:%d: bytes %q is not an unsigned integer", name, line, truncateText(fields[2]))
		}
		if fields[1] == "Read" || fields[1] == "Write" {
			total += n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return total, nil
}

// psiTotals are the cumulative stall times of one pressure file, in µs.
type psiTotals struct {
	some, full       uint64
	hasSome, hasFull bool
}

// parsePSI reads a pressure file ("some avg10=… avg60=… avg300=… total=N",
// optionally a "full" line), as found in /proc/pressure/* and in cgroup v2
// directories.
func parsePSI(name string, data []byte) (psiTotals, error) {
	var p psiTotals
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		kind := fields[0]
		if kind != "some" && kind != "full" {
			return p, fmt.Errorf("%s:%d: line starts with %q, want some or full", name, line, truncateText(kind))
		}
		var total uint64
		found := false
		for _, kv := range fields[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return p, fmt.Errorf("%s:%d: %q is not key=value", name, line, truncateText(kv))
			}
			switch k {
			case "total":
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return p, fmt.Errorf("%s:%d: total=%q is not an unsigned integer", name, line, truncateText(v))
				}
				total, found = n, true
			case "avg10", "avg60", "avg300":
				if _, err := strconv.ParseFloat(v, 64); err != nil {
					return p, fmt.Errorf("%s:%d: %s=%q is not a number", name, line, k, truncateText(v))
				}
			}
		}
		if !found {
			return p, fmt.Errorf("%s:%d: %s line has no total=", name, line, kind)
		}
		if kind == "some" {
			p.some, p.hasSome = total, true
		} else {
			p.full, p.hasFull = total, true
		}
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return p, nil
}

func isDevice(s string) bool {
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(maj, 10, 32)
	_, err2 := strconv.ParseUint(min, 10, 32)
	return err1 == nil && err2 == nil
}

func truncateText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
