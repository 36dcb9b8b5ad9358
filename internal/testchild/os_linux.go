package testchild

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// touchedMemory maps n bytes outside the Go heap (so neither the garbage
// collector nor the race detector's shadow memory changes the figure) and
// writes every page, so they are resident. The mapping lives until the
// process exits.
func touchedMemory(n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	buf, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	for i := 0; i < len(buf); i += os.Getpagesize() {
		buf[i] = 1
	}
	return buf, nil
}

// answerCPUTime writes the process's CPU time (CLOCK_PROCESS_CPUTIME_ID)
// in nanoseconds as one line.
func answerCPUTime(w io.Writer) {
	const clockProcessCPUTimeID = 2
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		fmt.Fprintln(w, "error: clock_gettime(CLOCK_PROCESS_CPUTIME_ID):", errno)
		return
	}
	fmt.Fprintln(w, time.Duration(ts.Nano()).Nanoseconds())
}
