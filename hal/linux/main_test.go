package linux_test

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// childEnv selects what a re-executed test binary does instead of running
// tests: "burn:<threads>" spins that many threads until killed;
// "hold:<MiB>" waits for a line on stdin, then allocates and touches that
// much memory, reports "allocated" and waits until killed.
const childEnv = "UPDRAFT_HAL_LINUX_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		runChild(mode)
		return
	}
	os.Exit(m.Run())
}

func runChild(mode string) {
	var verb string
	var n int
	if _, err := fmt.Sscanf(mode, "%4s:%d", &verb, &n); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad mode", mode, err)
		os.Exit(2)
	}
	switch verb {
	case "burn":
		runtime.GOMAXPROCS(n)
		for range n {
			go func() {
				x := 0
				for {
					x++
				}
			}()
		}
		fmt.Println("ready")
		select {}
	case "hold":
		in := bufio.NewReader(os.Stdin)
		fmt.Println("ready")
		if _, err := in.ReadString('\n'); err != nil {
			os.Exit(3)
		}
		buf := make([]byte, n<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		fmt.Println("allocated " + strconv.Itoa(len(buf)))
		_, _ = in.ReadString('\n')
		runtime.KeepAlive(buf)
	default:
		fmt.Fprintln(os.Stderr, "child: unknown mode", mode)
		os.Exit(2)
	}
}
