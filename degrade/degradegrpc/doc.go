// Package degradegrpc gives gRPC servers the same degraded-mode behaviour
// as degrade's HTTP middleware, in a package of its own so that package
// degrade does not depend on gRPC.
//
// [UnaryServerInterceptor] admits each unary call through a
// *degrade.Controller. A rejected call fails with codes.Unavailable
// (disabled or shed) or codes.ResourceExhausted (throttled), the user
// message as the status message, a google.rpc.RetryInfo detail with the
// retry delay, and "retry-after" plus "updraft-degraded" response headers;
// admitted calls carry "updraft-degraded" while anything is degraded.
// [CriticalUnaryServerInterceptor] reports the latency of critical calls
// to the controller's critical guard (see degrade.GuardOptions).
//
//	ctl := degrade.MustNew(degrade.Options{})
//	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(
//		degradegrpc.UnaryServerInterceptor(ctl, degradegrpc.ByService)))
//
//	// During the update:
//	err := ctl.Set("search.v1.Search", degrade.Policy{Mode: degrade.Disable}, "index rebuild", until)
package degradegrpc
