// Package testchild runs the current test binary again as a child process
// that burns CPU or holds memory, so that tests measure real processes and
// the children need nothing but Go.
//
// The re-exec pattern: a test package hands its TestMain to [Main]. When
// the environment variable [EnvVar] is empty, Main runs the tests as usual;
// when it names a mode, Main does what the mode says instead and exits.
// [Start] re-executes [os.Executable] with EnvVar set to a mode, connects
// the child's stdin and stdout to pipes, and kills and reaps the child when
// the test ends:
//
//	func TestMain(m *testing.M) { testchild.Main(m) }
//
//	func TestCollector(t *testing.T) {
//		burner := testchild.Start(t, testchild.Burn(1)) // spinning when Start returns
//		holder := testchild.Start(t, testchild.Hold(128<<20))
//		cpu0 := burner.CPUTime(t) // the child's own account
//		// ... point the code under test at burner.PID() and holder.PID()
//	}
//
// # Modes
//
//   - [Burn](threads), "burn:T": T goroutines, each locked to its own
//     thread, spin until the child exits. "burn" means "burn:1".
//   - [Hold](bytes), "hold:N": N bytes are mapped outside the Go heap (so
//     neither the garbage collector nor the race detector changes the
//     figure) and every page is written, so they are resident.
//   - [HoldLater](bytes), "holdlater:N": says "started" and waits for a
//     line on stdin (see [Child.Proceed]) before holding N bytes, so a
//     test can move the child into a cgroup first and have the pages
//     charged there.
//   - [Exit], "exit": exits at once with status 0, for a PID that is
//     known to be gone (see [Command]).
//
// # Protocol
//
// A child says "ready" on stdout when it is in the state its mode names;
// [Start] waits for that ("started" for holdlater, whose "ready" follows
// [Child.Proceed]). After "ready" the child answers every line it reads
// with its own CPU time in nanoseconds ([Child.CPUTime]), and it exits
// with status 0 when its stdin closes ([Child.CloseStdin]); so children
// never outlive the test binary. A mode it cannot parse makes it print
// the reason on stderr and exit with status 2.
//
// # Platforms
//
// The CPU-time answer (CLOCK_PROCESS_CPUTIME_ID), memory mapped outside
// the Go heap and the /proc readers [ProcCPUTime] and [ResidentBytes] are
// Linux only. Elsewhere the package compiles and the modes run, but a
// holding child's memory is on the Go heap and a CPU-time request is
// answered with an error line, which [Child.CPUTime] reports as a failure.
//
// A [Child] belongs to the goroutine of the test that started it; its
// methods must not be called concurrently.
package testchild
