package linux

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
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

// ctrlBlkio is the cgroup v1 block I/O controller.
const ctrlBlkio = "blkio"

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

// checkDevices verifies that every configured block device exists.
func (d *Device) checkDevices() error {
	for _, dev := range d.cfg.IO.Devices {
		p := filepath.Join(d.cfg.Sys, "dev/block", dev)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("linux: config field \"io\": device %s: %w", dev, err)
		}
	}
	return nil
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

// savedLines are lines that, written one by one to a cgroup file, put
// back per-device settings Apply changed (v1 throttles, v2 io.max).
type savedLines struct {
	dir, file string
	lines     []string
}

func (s *savedLines) reverse(context.Context) error {
	for _, line := range s.lines {
		if err := cgroups.WriteFile(s.dir, s.file, line); err != nil {
			return fmt.Errorf("restore %s/%s with %q: %w", s.dir, s.file, line, err)
		}
	}
	return nil
}

// saveIO records how to restore the per-device I/O limits of dir for the
// configured devices: on v1 each throttle file's old value (0, no limit,
// when absent); on v2 each device's old rbps and wbps ("max" when absent).
func (d *Device) saveIO(j *journal, dir string) error {
	if d.layout.v2 {
		content, err := cgroups.ReadFile(dir, "io.max")
		if err != nil {
			return err
		}
		old, err := ParseIOMax(content)
		if err != nil {
			return fmt.Errorf("%s/io.max: %w", dir, err)
		}
		s := &savedLines{dir: dir, file: "io.max"}
		for _, dev := range d.cfg.IO.Devices {
			r, w := "max", "max"
			if v, ok := old[dev]["rbps"]; ok {
				r = v
			}
			if v, ok := old[dev]["wbps"]; ok {
				w = v
			}
			s.lines = append(s.lines, fmt.Sprintf("%s rbps=%s wbps=%s", dev, r, w))
		}
		j.record(s)
		return nil
	}
	for _, file := range []string{"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"} {
		content, err := cgroups.ReadFile(dir, file)
		if err != nil {
			return err
		}
		old, err := ParseThrottle(content)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", dir, file, err)
		}
		s := &savedLines{dir: dir, file: file}
		for _, dev := range d.cfg.IO.Devices {
			s.lines = append(s.lines, fmt.Sprintf("%s %d", dev, old[dev]))
		}
		j.record(s)
	}
	return nil
}

// ioResources fills r with a bandwidth limit (bytes/s per device, for
// reads and writes each; 0 means none) on every configured device.
func (d *Device) ioResources(r *cgroups.Resources, limit uint64) {
	for _, dev := range d.cfg.IO.Devices {
		major, minor, _ := ParseDevice(dev) // checked by New
		read := cgroups.NewThrottleDevice(int64(major), int64(minor), limit)
		write := cgroups.NewThrottleDevice(int64(major), int64(minor), limit)
		r.BlkioThrottleReadBpsDevice = append(r.BlkioThrottleReadBpsDevice, read)
		r.BlkioThrottleWriteBpsDevice = append(r.BlkioThrottleWriteBpsDevice, write)
	}
}
