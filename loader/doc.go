// Package loader loads relations of objects already in memory, grouped by
// the shard each object came from.
//
// [Load] loads one relation (has-one, belongs-to, has-many or m2m) of
// parents that are addressable structs of one model: parents are grouped by
// the shard on their identity.Token, each group's keys go in one IN list,
// and each group's statement runs where the [Env]'s Route says (the parents'
// shard unless a pin or a chooser told LoadedFrom says otherwise). A
// relation thus costs one statement per shard, not one per parent. Loaded
// objects record the shard they came from, and a unit of work's [Tracker]
// merges them into its identity map.
//
//	loaded, err := loader.Load(ctx, env, locationTable, parents, "Reports")
//	// parents' Reports fields are set; loaded.Objects() are the reports,
//	// for a nested load such as "Reports.Location".
//
// Of this module, loader imports identity only (its error is
// [identity.ShardError], re-exported as [ShardError]); session imports it,
// and users meet it through Session.LoadRelation and UnitOfWork.LoadRelation.
package loader
