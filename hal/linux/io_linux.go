package linux

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/cgroups"
)

// ctrlBlkio is the cgroup v1 block I/O controller.
const ctrlBlkio = "blkio"

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
		return j.record(s)
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
		if err := j.record(s); err != nil {
			return err
		}
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
