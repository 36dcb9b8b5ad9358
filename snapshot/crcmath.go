package snapshot

import "sync"

// CRC-32C algebra. A frame stored as it was captured (neither compressed
// nor sealed) has the chunk as its payload, so the chunk's checksum follows
// from the frame's, which covers the 16-byte frame header and then the
// payload: for the CRC-32C of hash/crc32 (pre- and post-inverted),
//
//	crc(H‖P) = crc(H)·x^(8·len(P)) mod P(x)  ⊕  crc(P)
//
// so crc(P) costs a few dozen multiplications instead of a second pass
// over the payload. Polynomials are in the reflected bit order hash/crc32
// uses: bit 31 is x^0.

// castagnoliReflected is the Castagnoli polynomial, reflected.
const castagnoliReflected = 0x82f63b78

// crcMul returns a·b mod P(x).
func crcMul(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReflected
		} else {
			b >>= 1
		}
	}
	return p
}

// crcPowers[k] is x^(2^k) mod P(x).
var crcPowers = sync.OnceValue(func() (t [64]uint32) {
	t[0] = 1 << 30 // x^1
	for k := 1; k < len(t); k++ {
		t[k] = crcMul(t[k-1], t[k-1])
	}
	return t
})

// crcShift returns crc·x^(8·n) mod P(x): the part a prefix with checksum
// crc contributes to the checksum of itself followed by n more bytes.
func crcShift(crc uint32, n int) uint32 {
	powers := crcPowers()
	// x^(8n) is the product of x^(2^(j+3)) over the set bits j of n.
	for k := 3; n > 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			crc = crcMul(powers[k], crc)
		}
	}
	return crc
}

// crcOfSuffix returns crc(B) from crc(A‖B), crc(A) and len(B).
func crcOfSuffix(whole, prefix uint32, suffixLen int) uint32 {
	return whole ^ crcShift(prefix, suffixLen)
}
