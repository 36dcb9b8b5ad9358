package hal

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Resource names a kind of capacity. The built-in resources have fixed
// units; a device-specific resource (for example "nic.queue" or
// "flow.entries") is a count unless its driver documents otherwise.
type Resource string

// Built-in resources and their units.
const (
	CPU    Resource = "cpu"    // cores (1.5 = one and a half cores)
	Memory Resource = "memory" // bytes
	IO     Resource = "io"     // bytes per second of block I/O
)

// Vector holds a quantity per resource. A missing resource means zero. The
// arithmetic methods never modify their receiver; they return a new Vector.
// A nil Vector is a valid, empty one.
type Vector map[Resource]float64

// Clone returns a copy of v.
func (v Vector) Clone() Vector {
	if v == nil {
		return Vector{}
	}
	return maps.Clone(v)
}

// Get returns the quantity of r, zero when absent.
func (v Vector) Get(r Resource) float64 { return v[r] }

// Add returns v + o, resource by resource.
func (v Vector) Add(o Vector) Vector {
	out := v.Clone()
	for r, q := range o {
		out[r] += q
	}
	return out
}

// Sub returns v - o, resource by resource. Results may be negative; use
// [Vector.FitsWithin] or [Vector.Shortfall] to ask whether o fits in v.
func (v Vector) Sub(o Vector) Vector {
	out := v.Clone()
	for r, q := range o {
		out[r] -= q
	}
	return out
}

// Scale returns v with every quantity multiplied by f.
func (v Vector) Scale(f float64) Vector {
	out := make(Vector, len(v))
	for r, q := range v {
		out[r] = q * f
	}
	return out
}

// Max returns the element-wise maximum of v and o.
func (v Vector) Max(o Vector) Vector {
	out := v.Clone()
	for r, q := range o {
		if q > out[r] {
			out[r] = q
		}
	}
	return out
}

// Min returns the element-wise minimum of v and o over the resources
// present in either (an absent resource counts as zero).
func (v Vector) Min(o Vector) Vector {
	out := make(Vector, len(v))
	for _, r := range union(v, o) {
		out[r] = math.Min(v[r], o[r])
	}
	return out
}

// FitsWithin reports whether every quantity of v is at most the same
// resource's quantity in capacity. A resource capacity does not name counts
// as zero capacity, so a demand for it does not fit.
func (v Vector) FitsWithin(capacity Vector) bool {
	for r, q := range v {
		if q > capacity[r] {
			return false
		}
	}
	return true
}

// Shortfall returns, for each resource where v exceeds capacity, by how
// much. It is empty when v fits within capacity.
func (v Vector) Shortfall(capacity Vector) Vector {
	out := Vector{}
	for r, q := range v {
		if d := q - capacity[r]; d > 0 {
			out[r] = d
		}
	}
	return out
}

// IsZero reports whether every quantity is zero.
func (v Vector) IsZero() bool {
	for _, q := range v {
		if q != 0 {
			return false
		}
	}
	return true
}

// Resources returns the resources v names, sorted.
func (v Vector) Resources() []Resource {
	return slices.Sorted(maps.Keys(v))
}

// Validate returns an error naming the first resource (in sorted order)
// whose quantity is negative, NaN or infinite, or whose name is empty.
func (v Vector) Validate() error {
	for _, r := range v.Resources() {
		q := v[r]
		switch {
		case r == "":
			return fmt.Errorf("hal: empty resource name")
		case math.IsNaN(q):
			return fmt.Errorf("hal: resource %q: quantity is NaN", r)
		case math.IsInf(q, 0):
			return fmt.Errorf("hal: resource %q: quantity is infinite", r)
		case q < 0:
			return fmt.Errorf("hal: resource %q: quantity %v is negative", r, q)
		}
	}
	return nil
}

// String formats v with units, resources sorted: "cpu=1.5 cores memory=256MiB".
func (v Vector) String() string {
	var b strings.Builder
	for i, r := range v.Resources() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(r))
		b.WriteByte('=')
		b.WriteString(FormatQuantity(r, v[r]))
	}
	return b.String()
}

// FormatQuantity formats q in the unit of r, to four significant digits.
func FormatQuantity(r Resource, q float64) string {
	switch r {
	case CPU:
		return strconv.FormatFloat(q, 'g', 4, 64) + " cores"
	case Memory:
		return formatBytes(q)
	case IO:
		return formatBytes(q) + "/s"
	default:
		return strconv.FormatFloat(q, 'g', 6, 64)
	}
}

func formatBytes(q float64) string {
	const unit = 1024
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(q) >= unit && i < len(units)-1 {
		q /= unit
		i++
	}
	return strconv.FormatFloat(q, 'g', 4, 64) + units[i]
}

func union(a, b Vector) []Resource {
	set := make(map[Resource]struct{}, len(a)+len(b))
	for r := range a {
		set[r] = struct{}{}
	}
	for r := range b {
		set[r] = struct{}{}
	}
	return slices.Sorted(maps.Keys(set))
}
