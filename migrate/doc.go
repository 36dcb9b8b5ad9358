// Package migrate moves non-critical functions off the machine being
// updated — to FaaS capacity in another region or cloud, or to reserved
// capacity on the same machine — routes their invocations there for the
// update window, and brings them and their state back, losing nothing.
//
// A [Mover] (the [Migrator]) holds a list of [Target]s. [Mover.Migrate]
// probes them, lets a [Policy] choose one per function among the healthy
// targets its data-residency allow-list permits and that have room,
// exports the function's [State] to it, and returns a [Lease]. While the
// lease holds, [Lease.Invoke] writes each invocation to a bounded on-disk
// buffer and delivers it at least once, with retries, backoff and an
// idempotency key, so its effect happens exactly once; up to
// [Options.MaxInFlight] invocations of a function travel at once (fewer to
// a target that asks for fewer, [InFlightLimiter]), and after
// an outage the buffer is replayed one at a time, in order. Every
// [Options.CheckpointEvery] invocations the function's state is fetched
// home as a checkpoint; the buffer keeps what the last checkpoint does not
// cover, so when a target dies the function fails over to the next one
// (or home, in degraded mode) with the checkpoint and a replay of the
// buffer. [Lease.Return] drains, imports the state that changed remotely,
// and routes locally again.
//
// Durability: each invocation is written to the lease's buffer under
// Options.BufferDir and fsynced before it is delivered (concurrent
// invocations share one fsync), so an invocation whose answer Invoke
// returned is on disk. The lease's directory also holds its functions'
// targets, generations and last checkpoints, so that [Mover.Reattach] in
// a new process finds the lease by id, re-delivers what the buffer holds
// (the target deduplicates) and Return brings everything home
// (reattach_test.go: a host SIGKILLed mid-stream, every acknowledged
// invocation took effect once).
//
// The limit of exactly-once: an invocation whose answer was lost when its
// target died for good has an unknown outcome there, and the function's
// failover replays it. A stateful function's state is rebuilt from its
// checkpoint and that replay, so it stays right; an effect outside the
// State (a stateless or [Spec.NoAnswer] function's side effect) can then
// happen twice, once per invocation in flight at the death
// (answers_test.go TestInDoubtInvocationAfterTargetDiesForGood; at most
// [Options.MaxInFlight]). A target that comes back within
// Options.FailoverAfter gets the retry instead, and its deduplication
// keeps the effect single (functionsframework_test.go).
//
// Targets speak CloudEvents 1.0 over HTTP in binary mode
// ([CloudEventsTarget]) and the short wire protocol written in SPEC.md
// (answers, state and generation, deduplication, the MAC with test
// vectors); package migrate/migratetest checks a receiver against it. A
// [Handler] serves the same Go functions in the remote region (see
// examples/region). Plain CloudEvents receivers work within limits that
// Migrate enforces: a receiver that acknowledges without answering (202)
// hosts functions declared [Spec.NoAnswer], or, when the target has
// CloudEventsOptions.ReplyTo, answers later at that address
// ([CloudEventsTarget.ReplyHandler]); one that replies with its own
// event type hosts functions that list it in [Spec.AnswerTypes]; stateful
// functions need the state protocol. An invocation a target accepted is
// never run again elsewhere or at home ([ErrNoAnswer]). Tested receivers
// (SPEC.md section 7): the Handler; receivers built with the cloudevents
// SDK for Go; a bare 202 receiver; a CloudEvent function of the Functions
// Framework for Go served by the framework (AcknowledgeOnly,
// CloudEventsOptions.MaxInFlight 1; NoAnswer functions, or answers posted
// by the function to ReplyTo); the Handler behind an AWS
// Lambda function URL via aws-lambda-go's lambdaurl.Wrap, Lambda's own
// front end played by the test. Knative, Cloud Run and OpenFaaS are not
// run by the tests. Requests are signed with HMAC-SHA256 ([SignEvent],
// [VerifyEvent]) and refused when unsigned, tampered with or outside a
// time window (keys of at least [MinKeyBytes]); mutual TLS is the
// alternative. A lease's requests and a Handler's answers carry their
// time inside the signature extension ("t=<unix nanoseconds>,v1=<mac>",
// see [ExtSignature]) instead of in the optional ce-time, one header line
// fewer each way; Handlers and VerifyEvent also accept SignEvent's "v1=<mac>" with
// ce-time, so SDK clients keep working (package migrate/cesdk signs
// and verifies events of the SDK). [LocalTarget] runs functions
// in-process on reserved slots.
//
//	ce, _ := migrate.NewCloudEventsTarget("eu-1", "https://eu-1.example/fn",
//		migrate.CloudEventsOptions{Region: "eu-west"})
//	m, err := migrate.New([]migrate.Target{ce, migrate.NewLocalTarget("spare", migrate.LocalOptions{Slots: 2})},
//		migrate.Options{Key: key, Logger: logger})
//	lease, err := m.Migrate(ctx, "update-42", []migrate.Spec{{Function: "thumbnail", Local: thumbnail, State: cache}})
//	out, err := lease.Invoke(ctx, "thumbnail", img) // runs in eu-1
//	err = lease.Return(ctx)                            // state back, local again
//
// In the remote region:
//
//	h := migrate.NewHandler(migrate.HandlerOptions{Key: key})
//	h.Register("thumbnail", thumbnail, cache)
//	http.ListenAndServe(":8080", h)
//
// A stateful function's state is installed on a target under a
// generation ([ExtGeneration]); a Handler that restarted, or holds state
// of another generation, refuses with 409 instead of running on the wrong
// state, and the function fails over with its checkpoint.
//
// In-memory parts for tests and examples: [LocalTarget] is a Target,
// [MapState] a State, and a Mover over LocalTargets a Migrator that needs
// no network.
//
// Observability: logs go to Options.Logger (nil discards); counters per
// function (invocations, retries, failovers, replays, checkpoints, buffer
// overflow) are Prometheus collectors the caller registers
// ([Mover.Collector]); [Lease.Stats] and [Mover.Unhealthy] answer the same
// questions in code.
//
// Errors callers branch on are sentinels ([ErrUnknownFunction],
// [ErrNoTarget], [ErrPayloadTooLarge], [ErrBufferFull], [ErrUnreachable],
// [ErrRejected], [ErrUnauthorized], [ErrStateMismatch], [ErrNoAnswer],
// [ErrNotFound]) checked with
// errors.Is, and [*FunctionError] for a function's own error, checked with
// errors.As.
package migrate
