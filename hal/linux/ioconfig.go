package linux

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// IOConfig lets the driver enforce [hal.IO] (bytes per second of block
// I/O) on the block devices it names.
type IOConfig struct {
	// Devices are the "major:minor" numbers of the block devices whose
	// bandwidth is partitioned, for example "254:0" (see
	// /sys/block/<name>/dev).
	Devices []string `json:"devices"`
	// Bandwidth is what each device sustains, in bytes per second; the
	// device reports it as its [hal.IO] capacity.
	Bandwidth float64 `json:"bandwidth"`
}

func (c *IOConfig) check() error {
	if len(c.Devices) == 0 {
		return errors.New("field \"devices\" is empty")
	}
	if math.IsNaN(c.Bandwidth) || math.IsInf(c.Bandwidth, 0) || c.Bandwidth <= 0 {
		return fmt.Errorf("field \"bandwidth\": %v is not a positive number of bytes per second", c.Bandwidth)
	}
	seen := map[string]bool{}
	for _, d := range c.Devices {
		if _, _, err := ParseDevice(d); err != nil {
			return fmt.Errorf("field \"devices\": %w", err)
		}
		if seen[d] {
			return fmt.Errorf("field \"devices\": %q is listed twice", d)
		}
		seen[d] = true
	}
	return nil
}

// ParseDevice parses a block device number "major:minor".
func ParseDevice(s string) (major, minor uint32, err error) {
	a, b, ok := strings.Cut(s, ":")
	ma, err1 := strconv.ParseUint(a, 10, 32)
	mi, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("device %q is not \"major:minor\"", s)
	}
	return uint32(ma), uint32(mi), nil
}

// ParseThrottle parses a cgroup v1 blkio.throttle.*_device file, one
// "major:minor value" per line, into values by device.
func ParseThrottle(content string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for line := range strings.Lines(content) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("throttle line %q: want \"major:minor value\"", strings.TrimSpace(line))
		}
		if _, _, err := ParseDevice(f[0]); err != nil {
			return nil, fmt.Errorf("throttle line %q: %w", strings.TrimSpace(line), err)
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("throttle line %q: value %q is not a count", strings.TrimSpace(line), f[1])
		}
		out[f[0]] = v
	}
	return out, nil
}

// ParseIOMax parses a cgroup v2 io.max file, one "major:minor key=value
// ..." per line (values are counts or "max"), into settings by device.
func ParseIOMax(content string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for line := range strings.Lines(content) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if _, _, err := ParseDevice(f[0]); err != nil {
			return nil, fmt.Errorf("io.max line %q: %w", strings.TrimSpace(line), err)
		}
		kv := map[string]string{}
		for _, field := range f[1:] {
			k, v, ok := strings.Cut(field, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("io.max line %q: %q is not key=value", strings.TrimSpace(line), field)
			}
			if _, err := strconv.ParseUint(v, 10, 64); err != nil && v != "max" {
				return nil, fmt.Errorf("io.max line %q: %s=%q is neither a count nor \"max\"", strings.TrimSpace(line), k, v)
			}
			kv[k] = v
		}
		out[f[0]] = kv
	}
	return out, nil
}
