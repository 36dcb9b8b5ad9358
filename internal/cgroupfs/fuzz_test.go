package cgroupfs_test

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/cgroupfs"
)

// Every parser returns a value or an error wrapping ErrMalformed that
// names the file, and never panics.

func seed(f *testing.F, files ...string) {
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func named(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, cgroupfs.ErrMalformed) || !strings.HasPrefix(err.Error(), "cgroupfs: f") {
		t.Fatalf("error %q is not ErrMalformed naming the file", err)
	}
}

func FuzzParsePressure(f *testing.F) {
	seed(f, "testdata/v2/app/cpu.pressure", "testdata/v2/app/memory.pressure")
	f.Add([]byte("some avg10=1e2 total=1\n"))
	f.Add([]byte("some\x00avg10=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := cgroupfs.ParsePressure("f", data)
		if err != nil {
			named(t, err)
			return
		}
		for _, l := range []float64{st.Some.Avg10, st.Some.Avg60, st.Some.Avg300} {
			if math.IsNaN(l) || l < 0 || l > 100 {
				t.Fatalf("ParsePressure(%q) = %+v without error", data, st.Some)
			}
		}
	})
}

func FuzzParseIOStat(f *testing.F) {
	seed(f, "testdata/v2/app/io.stat")
	f.Add([]byte("x rbytes=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := cgroupfs.ParseIOStat("f", data); err != nil {
			named(t, err)
		}
	})
}

func FuzzParseBlkio(f *testing.F) {
	seed(f, "testdata/v1/blkio/app/blkio.throttle.io_service_bytes")
	f.Add([]byte("8:0 Read -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := cgroupfs.ParseBlkio("f", data); err != nil {
			named(t, err)
		}
	})
}

func FuzzParseUint(f *testing.F) {
	seed(f, "testdata/v2/app/memory.current", "testdata/v2/app/memory.max")
	f.Add([]byte("1\n2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := cgroupfs.ParseUint("f", data); err != nil {
			named(t, err)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	seed(f, "testdata/v2/app/cpu.stat")
	f.Add([]byte("usage_usec\n"))
	f.Add([]byte("usage_usec x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := cgroupfs.ParseKey("f", data, "usage_usec"); err != nil {
			named(t, err)
		}
	})
}
