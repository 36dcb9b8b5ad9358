// Package snapshot captures a host's critical state as one consistent cut
// with a pause near zero, stores it in a safe, streaming format, and
// restores it after an update or on rollback.
//
// # Pieces
//
//   - A [Source] is a piece of state the host registers. Its Capture runs
//     while the cut is paused and only takes a [View] (an immutable root);
//     the view's WriteTo serialises it afterwards, outside the pause.
//   - [ShardedMap] is the container to keep critical state in, including
//     tables written on the hot path: its reads and writes cost about what
//     a sharded RWMutex map's do, its capture is O(shards) whatever the
//     state's size (readers are not stopped), and its views write deltas (what
//     changed between two views, at a cost in proportion to the change)
//     for the self-update hand-over.
//   - [Map] is a persistent hash trie whose views are free (O(1), nothing
//     ever copied), for state captured very often or whose views are held
//     long while it is written; its hot path is several times slower
//     (writes tens of times). Both maps write the same format.
//   - The [Engine] (from [New]) is the [Snapshotter]: Snapshot takes the cut
//     and writes it, Restore verifies a snapshot fully before any source's
//     visible state changes ([Stager]s decode unverified bytes aside while
//     it verifies, and commit only after).
//   - A [Store] keeps snapshots: [FileStore] (the default: temp file, fsync,
//     rename, directory fsync, checksum, retention), [MemStore] (tests and
//     examples), and snapshot/etcdstore (a highly available etcd cluster).
//
// # Pausing: one cut for every source
//
// A cut pauses, in order, the host's [Options.Pause] hook (if set) and then
// every source implementing the optional [Pauser] interface (in name
// order); then it calls Capture on every source; then it resumes them in
// reverse order. The time between the first pause and the last resume is
// reported as [Manifest.Pause]. If a pause or capture fails or panics, the
// cut is abandoned, everything paused so far is resumed, and the error
// (matching [ErrCapture]) is returned. A [ShardedMap] or a [Map] pauses by
// stopping its writers, so its writers wait for the cut and its readers do
// not notice it.
// Sources without Pauser are captured as they are at that moment.
//
// # Optional interfaces
//
//   - [Pauser] on a [Source]: the source is paused with the cut (above).
//   - [Stager] on a [Source]: Restore streams the source's bytes into
//     Stage while it verifies the snapshot, so the snapshot is read once and
//     decoded while it is checked; the new state is built aside. Only after
//     the end frame, the manifest and every checksum verify (and every Stage
//     succeeded) does Restore call each commit (a [Map] swaps its root, a
//     [ShardedMap] its shards); on any failure the staged state is dropped
//     and no source changed. Sources without Stager are restored as before,
//     through [Source.Restore], after verification.
//   - io.Closer on a [View]: Close is called once the view has been written,
//     or when the cut is abandoned, to release what the view holds.
//   - [DeltaView] on a [View] and [DeltaSource] on a [Source]: the view
//     writes what changed since an earlier view of the same source, and
//     the source applies it (verified whole first). The self-update
//     hand-over sends a bulk copy while the old process serves, then the
//     delta during the pause. [ShardedMap] implements both.
//
// # Format
//
// A snapshot is a versioned header, then each source's bytes cut into
// chunks (256 KiB by default) compressed with S2 (the default: 3–4x zstd's
// speed, for snapshots taken just before an update) or zstd
// ([Options.Compression]; smaller, several times the CPU), each in a frame
// with its own CRC-32C and its codec, then a manifest (sources, sizes, app version, time, every
// chunk's checksums) and an end frame; see [FormatVersion] for the layout.
// With [Options.Key] set, every frame is sealed with AES-GCM, so the store
// may live in another cloud. Writing and reading stream: memory stays
// bounded by a few chunks whatever the state's size (a [Map] or
// [ShardedMap] restored keeps its chunks: they are its values' memory). A
// snapshot written by
// another app version is handed to [Options.Upgrade] or refused with
// [ErrAppVersion].
//
// # Usage
//
//	routes, _ := snapshot.NewShardedMap(snapshot.MapOptions[string, []byte]{})
//	store, err := snapshot.NewFileStore("/var/lib/myapp/snapshots", snapshot.FileStoreOptions{Retain: 3})
//	if err != nil { ... }
//	eng, err := snapshot.New(store, map[string]snapshot.Source{"routes": routes},
//		snapshot.Options{AppVersion: "1.4.2"})
//	if err != nil { ... }
//	m, err := eng.Snapshot(ctx) // m.Pause is what the data path saw
//	...
//	err = eng.Restore(ctx, m) // after a failed update
//
// Throughput, pause and failures are exported through [Engine.Collector],
// which the host registers.
// Compression costs CPU: on a host short of it, [CompressionNone] trades
// bytes stored for speed; for a remote or metered store, [CompressionZstd]
// trades CPU for bytes. A snapshot taken while the host serves competes
// with it for cores: [Options.CPUShare] paces the encoding to a share of
// one core (it then takes about 1/CPUShare times as long). Restore reads any codec whatever the engine's
// setting, and snapshots written before S2 existed (format version 1).
// Restore reads a snapshot once when every source is a [Stager] or the
// other sources' state fits in [Options.RestoreMemory] (32 MiB by
// default), twice otherwise; either way every byte is verified before a
// source's visible state changes.
//
// Errors callers branch on are sentinels checked with errors.Is:
// [ErrNotFound], [ErrCorrupt], [ErrTruncated], [ErrKeyRequired],
// [ErrWrongKey], [ErrNotEncrypted], [ErrFormatVersion], [ErrAppVersion],
// [ErrSourceMismatch], [ErrCapture], [ErrDeltaBase].
package snapshot
