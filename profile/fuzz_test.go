package profile

import (
	"strings"
	"testing"
)

// The fuzz targets check that every parser of kernel files returns either
// a value or an error naming the file, and never panics.

func FuzzParsePSI(f *testing.F) {
	f.Add([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"))
	f.Add([]byte("some avg10=97.09 avg60=97.05 avg300=81.33 total=563212187\n"))
	f.Add([]byte("some total=x\n"))
	f.Add([]byte("half avg10=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePSI("cpu.pressure", data)
		if err != nil {
			requireNamed(t, err, "cpu.pressure:")
			return
		}
		if p.hasSome != strings.Contains(string(data), "some") && p.hasSome {
			t.Fatalf("some reported without a some line: %q", data)
		}
	})
}

func FuzzParseIOStatV2(f *testing.F) {
	f.Add([]byte("8:0 rbytes=2048 wbytes=4096 rios=1 wios=1 dbytes=0 dios=0\n"))
	f.Add([]byte("8:0 rbytes=1\n253:1 wbytes=2\n"))
	f.Add([]byte("x rbytes=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseIOStatV2("io.stat", data); err != nil {
			requireNamed(t, err, "io.stat:")
		}
	})
}

func FuzzParseBlkioV1(f *testing.F) {
	f.Add([]byte("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 0\n8:0 Total 12288\nTotal 12288\n"))
	f.Add([]byte("Total 0\n"))
	f.Add([]byte("8:0 Read -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseBlkioV1("blkio.throttle.io_service_bytes", data); err != nil {
			requireNamed(t, err, "blkio.throttle.io_service_bytes:")
		}
	})
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add([]byte("usage_usec 1000000\nuser_usec 700000\nsystem_usec 300000\n"), "usage_usec")
	f.Add([]byte("usage_usec\n"), "usage_usec")
	f.Add([]byte("a 1\nb x\n"), "b")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		if _, _, err := parseFlatKeyed("cpu.stat", data, key); err != nil {
			requireNamed(t, err, "cpu.stat:")
		}
	})
}

func FuzzParseSingleValue(f *testing.F) {
	f.Add([]byte("123\n"))
	f.Add([]byte("max\n"))
	f.Add([]byte(""))
	f.Add([]byte("1\n2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseSingleValue("memory.current", data); err != nil {
			requireNamed(t, err, "memory.current:")
		}
	})
}

func requireNamed(t *testing.T, err error, prefix string) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error %q does not start with %q", err, prefix)
	}
}
