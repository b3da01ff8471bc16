// Package loader loads relations of objects already in memory, grouped by
// the shard each object came from. It is a layer of its own: it needs only
// the shards' handles, and knows nothing of package session.
//
// [Load] loads one relation (has-one, belongs-to, has-many or m2m) of
// parents that are addressable structs of one model: parents are grouped by
// the shard on their identity.Token, each group's keys go in one IN list,
// and each group's statement runs on the parents' own shard, or where a
// [Router] says. A relation thus costs one statement per shard, not one per
// parent, and a [Conns] that is a [Folder] can send the statements of
// shards that share a database as one. Loaded objects record on their
// Token the shard they came from, and a [Tracker] (a unit of work's
// identity map) can adopt them.
//
//	shards := loader.Shards{"asia": asiaDB, "europe": europeDB}
//	loaded, err := loader.Load(ctx, shards, locationTable, parents, "Reports")
//	// parents' Reports fields are set; loaded.Objects() are the reports,
//	// for a nested load such as "Reports.Location".
//
// Of this module, loader imports identity only (its error is
// [identity.ShardError], re-exported as [ShardError]). Package session
// implements [Conns], [Folder], [Router] and [Tracker] with its own routing
// rules, fold groups and identity map for Session.LoadRelation and
// UnitOfWork.LoadRelation.
package loader
