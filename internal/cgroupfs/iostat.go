package cgroupfs

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ParseIOStat parses cgroup v2 io.stat ("MAJ:MIN rbytes=N wbytes=N ...")
// named name and returns the bytes read plus written over every device.
// Errors wrap [ErrMalformed] and name the file and line.
func ParseIOStat(name string, data []byte) (uint64, error) {
	var total uint64
	err := eachLine(name, data, func(fields []string) error {
		if !isDevice(fields[0]) {
			return fmt.Errorf("%q is not a MAJ:MIN device", truncate(fields[0]))
		}
		for _, kv := range fields[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("%q is not key=value", truncate(kv))
			}
			if k != "rbytes" && k != "wbytes" {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%s=%q is not an unsigned integer", k, truncate(v))
			}
			total += n
		}
		return nil
	})
	return total, err
}

// ParseBlkio parses cgroup v1 blkio.throttle.io_service_bytes ("MAJ:MIN
// Read N" ... and a final "Total N") named name and returns the bytes read
// plus written over every device. Errors wrap [ErrMalformed] and name the
// file and line.
func ParseBlkio(name string, data []byte) (uint64, error) {
	var total uint64
	err := eachLine(name, data, func(fields []string) error {
		if len(fields) == 2 && fields[0] == "Total" {
			if _, err := strconv.ParseUint(fields[1], 10, 64); err != nil {
				return fmt.Errorf("the Total line's %q is not an unsigned integer", truncate(fields[1]))
			}
			return nil
		}
		if len(fields) != 3 || !isDevice(fields[0]) {
			return fmt.Errorf("%q is not \"MAJ:MIN Op bytes\"", truncate(strings.Join(fields, " ")))
		}
		n, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return fmt.Errorf("bytes %q is not an unsigned integer", truncate(fields[2]))
		}
		if fields[1] == "Read" || fields[1] == "Write" {
			total += n
		}
		return nil
	})
	return total, err
}

// eachLine calls fn with the fields of every non-blank line of data,
// turning its error into one naming the file and line.
func eachLine(name string, data []byte, fn func(fields []string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if err := fn(fields); err != nil {
			return fmt.Errorf("cgroupfs: %s:%d: %w: %w", name, line, err, ErrMalformed)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cgroupfs: %s:%d: %w: %w", name, line+1, err, ErrMalformed)
	}
	return nil
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
