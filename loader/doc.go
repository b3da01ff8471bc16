// Package loader runs work on shards: the per-shard error type shared by the
// whole library, and (as it grows) the loading of relations of objects already
// in memory, grouped by the shard each object came from.
//
// loader imports chooser, identity and merge, and nothing imports it but
// session; users meet its types through aliases in package session.
package loader
