package snapshot

import (
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/require"
)

// crcOfSuffix agrees with hash/crc32 for every split of data, up to sizes
// past a chunk.
func TestCRCOfSuffix(t *testing.T) {
	data := testValue(3, 300<<10)
	for _, n := range []int{0, 1, 2, 3, 7, 8, 15, 16, 17, 255, 256, 4096, 65537, 300 << 10} {
		for _, split := range []int{0, 1, frameHeaderSize, n / 2, n} {
			if split > n {
				continue
			}
			a, b := data[:split], data[split:n]
			whole := crc32.Checksum(data[:n], castagnoli)
			prefix := crc32.Checksum(a, castagnoli)
			require.Equal(t, crc32.Checksum(b, castagnoli), crcOfSuffix(whole, prefix, len(b)), "n=%d split=%d", n, split)
		}
	}
}

func FuzzCRCOfSuffix(f *testing.F) {
	f.Add([]byte("frame header.....payload"), 16)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			return
		}
		whole := crc32.Checksum(data, castagnoli)
		prefix := crc32.Checksum(data[:split], castagnoli)
		if got, want := crcOfSuffix(whole, prefix, len(data)-split), crc32.Checksum(data[split:], castagnoli); got != want {
			t.Fatalf("crcOfSuffix = %08x, want %08x", got, want)
		}
	})
}
