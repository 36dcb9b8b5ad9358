package degrade_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/updraft-dev/updraft/degrade"
)

// A fixed clock keeps the examples' output stable; real code leaves Clock nil.
var exampleNow = time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)

func exampleClock() time.Time { return exampleNow }

func ExampleController_Set() {
	ctl := degrade.MustNew(degrade.Options{Clock: exampleClock})
	err := ctl.Set("search", degrade.Policy{Mode: degrade.Disable},
		"the search index is being rebuilt", exampleNow.Add(15*time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}

	_, err = ctl.Acquire("search")
	var rej *degrade.RejectedError
	if errors.As(err, &rej) {
		fmt.Println(errors.Is(err, degrade.ErrDisabled), rej.RetryAfterSeconds())
		fmt.Println(rej.Message())
	}

	// Functions never Set are Normal and always admitted.
	release, err := ctl.Acquire("checkout")
	fmt.Println(err)
	release()
	// Output:
	// true 900
	// "search" is temporarily unavailable (the search index is being rebuilt). Full service is expected by 2026-11-26 22:15:00 UTC. Please try again in 900 seconds.
	// <nil>
}

func ExampleController_Set_badInput() {
	ctl := degrade.MustNew(degrade.Options{Clock: exampleClock, Functions: []string{"search"}})
	fmt.Println(ctl.Set("serach", degrade.Policy{Mode: degrade.Disable}, "", exampleNow.Add(time.Minute)))
	fmt.Println(ctl.Set("search", degrade.Policy{Mode: degrade.Throttle, RatePerSecond: -1}, "", exampleNow.Add(time.Minute)))
	fmt.Println(ctl.Set("search", degrade.Policy{Mode: degrade.Disable}, "", exampleNow.Add(-time.Minute)))
	// Output:
	// degrade: set "serach": not among Options.Functions: degrade: unknown function
	// degrade: set "search": degrade: policy: RatePerSecond -1 must be a finite number >= 0: degrade: invalid policy
	// degrade: set "search": until 2026-11-26T21:59:00Z is not after now 2026-11-26T22:00:00Z: degrade: window already passed
}

func ExampleController_Middleware() {
	ctl := degrade.MustNew(degrade.Options{Clock: exampleClock})
	search := ctl.Middleware("search", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "results\n")
	}))
	if err := ctl.Set("search", degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 1},
		"the data plane is being updated", exampleNow.Add(10*time.Minute)); err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		rec := httptest.NewRecorder()
		search.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/search", nil))
		fmt.Println(rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get(degrade.HeaderDegraded))
		fmt.Print(rec.Body.String())
	}
	// Output:
	// 200  search
	// results
	// 429 1 search
	// "search" is running at reduced capacity (the data plane is being updated) and this request was over its limit. Full service is expected by 2026-11-26 22:10:00 UTC. Please try again in 1 second.
}

func ExampleController_Subscribe() {
	ctl := degrade.MustNew(degrade.Options{Clock: exampleClock})
	cancel := ctl.Subscribe(func(ev degrade.Event) {
		// Hand slow notifications (mail, chat) to a goroutine of your own.
		fmt.Printf("%s: %s -> %s (%s, %q)\n", ev.Function, ev.From, ev.To, ev.Cause, ev.Reason)
	})
	defer cancel()
	_ = ctl.Set("reports", degrade.Policy{Mode: degrade.Shed, ShedFraction: 0.5}, "firmware update", exampleNow.Add(time.Hour))
	_ = ctl.Clear("reports")
	// Output:
	// reports: normal -> shed (set, "firmware update")
	// reports: shed -> normal (clear, "firmware update")
}

func ExampleController_StatusHandler() {
	ctl := degrade.MustNew(degrade.Options{Clock: exampleClock, Functions: []string{"checkout", "search"}})
	_ = ctl.Set("search", degrade.Policy{Mode: degrade.Throttle, MaxConcurrent: 8}, "the data plane is being updated", exampleNow.Add(10*time.Minute))
	rec := httptest.NewRecorder()
	ctl.StatusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	fmt.Print(rec.Body.String())
	// Output:
	// {
	//   "degraded": true,
	//   "time": "2026-11-26T22:00:00Z",
	//   "functions": [
	//     {
	//       "function": "checkout",
	//       "mode": "normal",
	//       "policy": {
	//         "mode": "normal"
	//       }
	//     },
	//     {
	//       "function": "search",
	//       "mode": "throttle",
	//       "policy": {
	//         "mode": "throttle",
	//         "maxConcurrent": 8
	//       },
	//       "since": "2026-11-26T22:00:00Z",
	//       "reason": "the data plane is being updated",
	//       "until": "2026-11-26T22:10:00Z",
	//       "limit": 8
	//     }
	//   ],
	//   "guard": {
	//     "factor": 1
	//   }
	// }
}

func ExampleNewPSI() {
	// On a live system pass "/proc"; here a fixture with memory pressure.
	psi, err := degrade.NewPSI("testdata/proc")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctl := degrade.MustNew(degrade.Options{Pressure: psi, PressureInterval: 5 * time.Second})
	percent, err := psi.Pressure(context.Background())
	fmt.Println(percent, err)
	ctl.ObservePressure(percent) // Run does this every PressureInterval
	fmt.Println(ctl.PressureFactor())
	// Output:
	// 35 <nil>
	// 0.5
}
