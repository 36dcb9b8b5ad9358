package partition

// scratch holds the largest working buffers of one Plan call that the
// plan does not keep: the demands' direction and minimum rows, the name
// order and the fill's events. A Planner pools them, so that planning
// again does not allocate (and the garbage collector does not chase)
// another dozen megabytes per 100 000 functions. Nothing a Plan returns
// may point into a scratch.
type scratch struct {
	order       []int
	peak, min   []float64
	events, buf []event
}

// getScratch returns a scratch from the planner's pool, or a new one.
func (p *Planner) getScratch() *scratch {
	if s, ok := p.scratch.Get().(*scratch); ok {
		return s
	}
	return &scratch{}
}

// resize returns s with length n, reusing its array when it is large
// enough. The elements are not cleared.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
