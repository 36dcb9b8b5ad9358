package partition

import (
	"runtime"
	"sync"
)

// parallelMin is the least number of items worth giving a goroutine of
// its own: below it, starting one costs more than it saves.
const parallelMin = 8192

// maxWorkers bounds how many goroutines one Plan call uses at once.
const maxWorkers = 8

// split calls do over [0, n) in contiguous chunks, one goroutine each, at
// most workers at once (GOMAXPROCS and maxWorkers when workers is 0), and
// returns when all are done; small inputs run as one chunk on the calling
// goroutine. Chunks are numbered from 0 in index order, so a caller can
// keep per-chunk results and combine them in order. do must write only
// what belongs to its own indexes.
func split(n, workers int, do func(chunk, lo, hi int)) {
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), maxWorkers)
	}
	workers = max(1, min(workers, n/parallelMin))
	if workers == 1 {
		do(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers - 1 {
		wg.Go(func() { do(w, n*w/workers, n*(w+1)/workers) })
	}
	do(workers-1, n*(workers-1)/workers, n)
	wg.Wait()
}

// chunks returns how many chunks split makes of n items.
func chunks(n, workers int) int {
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), maxWorkers)
	}
	return max(1, min(workers, n/parallelMin))
}
