// Command region is a runnable FaaS region: an HTTP server that hosts a
// couple of demo functions with migrate.Handler, so a Lease elsewhere can
// move them here during an update.
//
//	go run ./examples/region -listen 127.0.0.2:8080 -region eu-west
//
// Functions served:
//
//	count  stateful: adds one to the counter named by the payload and
//	       returns the new value; its counters move with it (migrate.MapState)
//	upper  stateless: returns the payload in upper case
//
// Requests must be CloudEvents signed with the shared key: -key, else
// $UPDRAFT_KEY, else the demo key DemoKey (with a warning on stderr — fine
// on loopback, never in production). SIGINT or SIGTERM shuts the server
// down gracefully.
package main
