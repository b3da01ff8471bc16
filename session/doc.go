// Package session gives Bun applications horizontal sharding over
// PostgreSQL, modeled on SQLAlchemy's sqlalchemy.ext.horizontal_shard.
//
// A [Session] wraps one bun.IDB per shard (all built on one shared
// pgdialect.New() value) and routes every statement through three choosers
// from package chooser:
//
//   - the ShardChooser places new objects (INSERT);
//   - the IdentityChooser names the candidate shards of a primary key (Get);
//   - the ExecuteChooser names the shards a select, update or delete fans
//     out to; results are merged.
//
// Routing can be pinned instead, with this precedence: a statement option
// ([SetShardID], [SetShardIDs]), a [Session.Using] view, the context
// ([WithShardID], the per-request routing of multi-tenant apps), and only
// then the chooser. An unknown shard is always an error, never a silent
// fan-out.
//
// Models embed [Token] to remember the shard they were loaded from or
// written to: later Update and Delete calls go back there without asking a
// chooser, even after the column the chooser reads has changed, and objects
// loaded through relations carry their parent's shard.
//
//	dialect := pgdialect.New() // one dialect for every shard
//	shards := map[session.ShardID]bun.IDB{
//		"asia":   bun.NewDB(asiaSQL, dialect),
//		"europe": bun.NewDB(europeSQL, dialect),
//	}
//	byContinent := chooser.NewValueMap("continent", map[string]session.ShardID{
//		"Asia": "asia", "Europe": "europe",
//	})
//	sess, err := session.New(shards, byContinent, chooser.All, byContinent)
//
//	err = sess.Insert(ctx, &locations)                     // one INSERT per shard
//	err = sess.Get(ctx, &loc, 7)                           // the IdentityChooser's shards
//	err = sess.NewSelect().Model(&reports).
//		Relation("Location").                          // runs on each row's shard
//		Order("temperature DESC").Limit(100).Scan(ctx) // merged: a global top 100
//	err = sess.NewSelect().Model(&locs).
//		Options(session.SetShardID("asia")).Scan(ctx) // pinned, relations too
//	ctx = session.WithShardID(ctx, "asia")                 // per-request routing
//
// # Fan-out
//
// A statement on several shards runs on all of them in parallel (bounded by
// [WithConcurrency]), each with a fresh Bun query and destination. Slices are
// concatenated in route order, or merged into one global order when Order
// names plain model columns; Limit and Offset apply to the whole result.
// Count sums; Exists ors. The first failing shard cancels the rest and is
// reported as a *[ShardError]. Statements the session cannot answer
// correctly across shards (an ORDER BY on text, whose collation a Go merge
// cannot reproduce; Count with GROUP BY) fail with [ErrUnsupported] instead
// of answering wrongly; on a single shard they simply run.
//
// # Merging
//
// Beyond Scan: [Iter] streams a fan-out in global order and cancels every
// shard query when the consumer stops; [SelectQuery.GroupBy],
// [SelectQuery.Aggregate] and [SelectQuery.HavingAgg] merge groups and
// aggregates across shards exactly (avg from summed sums and counts);
// [SelectQuery.ScanPage] pages by keyset with an opaque cursor, so a deep
// page costs what the first one does. Text orders across shards need
// COLLATE "C" (byte order, the same in SQL and in the merge). The failure
// policy is per statement: fail fast (default) or [AllowPartial], whose
// *[PartialError] names every failed shard; [WithScatterGuard] and
// [DenyScatter] forbid statements that would run on every shard.
//
// # Writes
//
// Insert, Update and Delete take an object or a slice; a slice is split by
// shard and written with one statement per shard. Each shard commits on its
// own: when one fails, the error names the shards that committed. Updates
// and deletes that match fewer rows than objects given report
// sql.ErrNoRows rather than succeeding silently.
//
// # Concurrency
//
// A Session is safe for concurrent use and keeps no per-object state.
// SelectQuery, UpdateQuery and DeleteQuery are builders: build one in one
// goroutine, then run it.
package session
