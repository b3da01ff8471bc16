// Package chooser decides where statements go. It defines the three routing
// roles of a sharded session, each a one-method interface with a Func adapter:
//
//   - [ShardChooser]: an object about to be inserted -> the one shard it is
//     written to (SQLAlchemy's shard_chooser);
//   - [IdentityChooser]: a model and primary key -> the candidate shards a Get
//     probes, in order (identity_chooser);
//   - [ExecuteChooser]: a [Statement] descriptor -> the shards a select, update
//     or delete fans out to (execute_chooser).
//
// Every answer is a [Target], a printable value that tells apart all shards,
// no shard, and these shards in this order.
//
// Ready-made choosers cover the common cases: [ValueMap] routes by the value
// of one column (continent -> shard), [All] sends everything everywhere, and
// [FollowParent] places a child on its parent's shard (a Report with its
// Location). Relation loads tell choosers the parent's shard
// (Statement.LoadedFrom, Key.LoadedFrom); the ready-made choosers keep such
// loads on it.
//
//	byContinent := chooser.NewValueMap("continent", map[string]identity.ShardID{
//		"Asia":   "asia",
//		"Europe": "europe",
//	})
//	sess, err := session.New(shards, byContinent, chooser.All, byContinent)
//
// Choosers must be deterministic and safe for concurrent use: the session
// calls them from many goroutines.
//
// Within bunshard, chooser imports only identity; outside it, Bun's schema
// package and xxhash/v2.
//
// More strategies, one file each:
//
//   - [Hash]: xxhash/v2 of a column's value (a stable encoding) into fixed virtual buckets, each assigned to a shard.
//   - [Jump]: jump consistent hash of a column's value over an append-only list of shards.
//   - [Ranges]: sorted, non-overlapping half-open key ranges, each owned by a shard.
//   - [Lookup]: an arbitrary key -> shard [Directory] behind a bounded LRU cache.
//   - [FromID]: the bucket inside a shard-encoded ID ([identity.Layout]), so a Get by ID is one round trip.
//   - [RoundRobin]: new rows without a natural key, placed on each shard in turn.
//   - [First]: members asked in order, each role separately; [ErrNoOpinion] passes to the next.
//
// # Schemes
//
// A [Scheme] declares, per model, how its rows are spread: [Distributed] by
// its own key column through a [Strategy] (Hash, Jump, Ranges, ValueMap,
// FromID), [Reference] (a copy on every shard) or [RoutedBy] a chooser of
// its own. One strategy over tenants.id, projects.tenant_id and
// tasks.tenant_id keeps a tenant's rows on one shard. A model the scheme
// does not declare fails with [ErrUndeclared], never a fan-out.
//
//	scheme, err := chooser.NewScheme(shards,
//		chooser.Distributed((*Tenant)(nil), "id", byTenant),
//		chooser.Distributed((*Project)(nil), "tenant_id", byTenant),
//		chooser.Reference((*Plan)(nil)),
//	)
//	sess, err := session.New(dbs, scheme, scheme, scheme)
//
// # Routers
//
// A router answers routing questions about a model, as a Django database
// router does: [ReadRouter] (db_for_read), [WriteRouter] (db_for_write),
// [RelationRouter] (allow_relation) and [MigrateRouter] (allow_migrate).
// Each is its own one-method interface with a Func adapter; a router
// implements the questions it has an opinion on. [NewRouters] chains routers
// with a default chooser (Django's DATABASE_ROUTERS): they are asked in
// order, the first real answer wins, and the default answers what they
// leave open. The chain is itself a chooser, so a session takes it as it is.
//
//	routers := chooser.NewRouters(byTenant, settingsOnMain, auditOnArchive)
//	sess, err := session.New(shards, routers, routers, routers)
//
// A router abstains by answering [None] or an error wrapping [ErrNoOpinion]
// (read and write questions), or [Abstain] (yes/no questions).
package chooser
