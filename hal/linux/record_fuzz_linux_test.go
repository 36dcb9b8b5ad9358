package linux

import "testing"

func FuzzDecodeSteps(f *testing.F) {
	f.Add([]byte(`{"v":1,"driver":"linux","steps":[{"k":"file","dir":"/sys/fs/cgroup/cpu/a","file":"cpu.shares","content":"1024"},{"k":"dir","path":"/sys/fs/cgroup/cpu/a","shared":true},{"k":"task","pid":7,"tgid":7,"home":"/sys/fs/cgroup/cpu"}]}`))
	f.Add([]byte(`{"v":1,"driver":"linux","steps":[{"k":"lines","dir":"/sys/fs/cgroup/blkio/a","file":"blkio.throttle.read_bps_device","lines":["8:0 0"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		steps, err := decodeSteps(b, "/sys/fs/cgroup")
		if err != nil {
			return
		}
		// What decodes encodes again to a record that decodes the same.
		again, err := encodeSteps(steps)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeSteps(again, "/sys/fs/cgroup"); err != nil {
			t.Fatalf("re-encoded record refused: %v", err)
		}
	})
}
