//go:build !linux

package testchild

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

// touchedMemory allocates n bytes on the Go heap and writes every page, so
// they are resident; outside Linux the package does not map memory itself.
func touchedMemory(n int) ([]byte, error) {
	buf := make([]byte, n)
	for i := 0; i < len(buf); i += os.Getpagesize() {
		buf[i] = 1
	}
	return buf, nil
}

// answerCPUTime writes an error line: the process CPU clock is read on
// Linux only.
func answerCPUTime(w io.Writer) {
	fmt.Fprintf(w, "error: testchild reads the process CPU time on linux only, not %s\n", runtime.GOOS)
}
