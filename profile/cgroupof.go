package profile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CgroupOf returns the target that measures the cgroup(s) process pid
// belongs to, read from procRoot/<pid>/cgroup (procRoot empty means
// [DefaultProcRoot]): Path is its cgroup v2 path, and V1Paths its path in
// each v1 hierarchy a [CgroupCollector] reads ("cpuacct", "memory",
// "blkio", and "unified" for the v2 path on a hybrid system).
func CgroupOf(procRoot string, pid int, function string) (CgroupTarget, error) {
	if procRoot == "" {
		procRoot = DefaultProcRoot
	}
	name := filepath.Join(procRoot, strconv.Itoa(pid), "cgroup")
	data, err := os.ReadFile(name)
	if err != nil {
		return CgroupTarget{}, fmt.Errorf("profile: cgroup of pid %d: %w", pid, err)
	}
	paths, err := parseProcCgroup(name, data)
	if err != nil {
		return CgroupTarget{}, fmt.Errorf("profile: cgroup of pid %d: %w", pid, err)
	}
	t := CgroupTarget{Function: function, Path: paths[""], V1Paths: map[string]string{}}
	for _, h := range []string{"cpuacct", "memory", "blkio"} {
		if p, ok := paths[h]; ok {
			t.V1Paths[h] = p
		}
	}
	if p, ok := paths[""]; ok && len(t.V1Paths) > 0 {
		t.V1Paths["unified"] = p
	}
	return t, nil
}

// parseProcCgroup reads /proc/<pid>/cgroup ("ID:controllers:path" lines)
// and returns the path per controller; the v2 entry (empty controller
// list) is under "". Named hierarchies ("name=systemd") are kept by name.
func parseProcCgroup(name string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		parts := strings.SplitN(text, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s:%d: %q is not ID:controllers:path", name, line, truncateText(text))
		}
		if _, err := strconv.ParseUint(parts[0], 10, 32); err != nil {
			return nil, fmt.Errorf("%s:%d: hierarchy ID %q is not a number", name, line, truncateText(parts[0]))
		}
		if !strings.HasPrefix(parts[2], "/") {
			return nil, fmt.Errorf("%s:%d: path %q is not absolute", name, line, truncateText(parts[2]))
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			out[ctl] = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no cgroup lines", name)
	}
	return out, nil
}

func truncateText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
