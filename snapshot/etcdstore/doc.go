// Package etcdstore is a highly available [snapshot.Store] on an etcd
// cluster (go.etcd.io/etcd/client/v3), for state that must survive the loss
// of the machine being updated.
//
// etcd refuses requests over 1.5 MiB, so a snapshot is cut into chunks of
// at most [Options.ChunkBytes] (1 MiB by default), each written as its own
// key. A snapshot becomes visible only when a final manifest key is written
// in a transaction, so a reader never sees a partial snapshot:
//
//	<prefix>p/<id>          pending marker, attached to a lease the writer keeps alive
//	<prefix>c/<id>/<n>      chunk n (no lease)
//	<prefix>m/<id>          manifest: chunk count, length, CRC-32C (written last)
//
// The commit transaction writes the manifest and deletes the pending marker
// only if the marker still exists, that is, only if the writer's lease did
// not expire. Chunks of a writer that died (no manifest, no pending marker)
// are deleted by [Store.Sweep], which [New] and every commit run. Readers
// read every chunk at the manifest's revision and check the length and
// checksum, so a snapshot deleted or compacted under them fails loudly
// instead of reading short.
//
// Usage:
//
//	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints})
//	store, err := etcdstore.New(ctx, cli, etcdstore.Options{Prefix: "myapp/snapshots/"})
//	eng, err := snapshot.New(store, sources, snapshot.Options{Key: key})
//
// The store does not own the client; close it after the store is done.
package etcdstore
