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
// # Routers
//
// A router chain (chooser.NewRouters: Django's DATABASE_ROUTERS, asked in
// order before a default chooser) is a chooser, so New takes it as it is:
//
//	routers := chooser.NewRouters(byTenant, settingsOnMain)
//	sess, err := session.New(shards, routers, routers, routers)
//
// Two more abilities are found by type assertion on the session's
// ShardChooser, the chooser that decides where writes go: a
// chooser.RelationRouter vets, before Insert and Update send anything, the
// objects held in relation fields ([ErrRelationDenied]; by default a
// relation between objects on two shards is refused), and a
// chooser.MigrateRouter decides where placement puts tables. Without them
// every relation is allowed and every table goes to every shard.
//
// Per-statement routing by name is [SetShardID] and [Session.Using];
// per-request routing is [WithShardID] in the request's context, which every
// goroutine started from it carries too (examples/tenant_http has a net/http
// middleware that picks the tenant's shard).
//
// # Layouts
//
// [Session.CreateTables] and [Session.DropTables] create and drop the tables
// of a set of models on exactly the shards the MigrateRouter allows;
// [Session.Tables] reports which exist where (from pg_catalog), and
// [Session.Placement] what CreateTables would do. A shard's tables go where
// its connection puts unqualified names, so one code path serves every
// layout:
//
//   - a database per shard: each shard's bun.DB on its own database;
//   - a schema per shard: several shards in one database, each connection
//     with its own search_path (pgdriver.WithConnParams(map[string]any{
//     "search_path": "shard_a"})); CreateTables creates the schema;
//   - a mix of the two;
//   - a table per shard, in one schema: the models' table names start with a
//     placeholder, bun:"table:?(prefix)reports", and each shard's bun.DB
//     defines it, db.WithNamedArg("prefix", bun.Safe("a_")) (empty on the
//     other layouts). Bun expands named arguments wherever it writes a table
//     name (the main table, has-one and belongs-to joins, has-many and m2m
//     queries, m2m join tables), so relations stay on the shard's tables.
//     Only the foreign keys of Bun's CreateTable keep the placeholder;
//     CreateTables writes them itself (WithForeignKeys).
//
// Placement refuses shards whose tables would be one and the same table
// (two shards on one database and schema, without a prefix).
//
// # Replicas
//
// [WithReplicas] gives a shard streaming replicas. Reads (Get and every
// select, with their relation queries) go to a healthy replica, in turns;
// writes, everything in a transaction, and reads under [WithPrimary] go to
// the primary. [Session.WithReadYourWrites] returns a context in which reads
// see the session's writes: after a write the session records a WAL
// position of the primary past its commit, and a read goes to a replica only
// once the replica's health check saw it replay that far. Replicas are
// checked on one goroutine per session ([WithReplicaCheck]; [Session.Close]
// stops it); a replica that fails a check or cannot be reached by a read is
// skipped until a check succeeds, and such a read is run again on the
// primary when that is safe.
//
// # Concurrency
//
// A Session is safe for concurrent use and keeps no per-object state.
// SelectQuery, UpdateQuery and DeleteQuery are builders: build one in one
// goroutine, then run it.
package session
