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
// fan-out, and so is a pin to no shard at all (SetShardIDs() or Using()
// with no ids, WithShardID(ctx, "")): [ErrInvalidArgument].
// A pin never moves a row off its own shard: a pinned Insert, Update or
// Delete of an object the ShardChooser places on another shard fails with
// [ErrPinConflict] (a tenant's row written under another tenant's pin),
// unless the statement says [PinWins]; a chooser that cannot place the
// object leaves it to the pin.
//
// # Key values
//
// A primary-key value of a Get and a value declared with WhereShardKey are
// converted to the Go type of the model's column before a chooser sees them
// and before they go into the SQL, so "42", 42, int32(42) and 42.0 route
// and match alike for an int64 column, with every chooser. The conversion
// is strict, and a value it cannot make without loss is
// [ErrInvalidArgument] naming the model, column, type and value: integer
// columns take integers that fit, decimal strings that fit, and floats that
// hold an integer exactly up to 2^53 (1001.9 is an error, never row 1001);
// float columns take exact floats and integers; string columns take
// strings only (42 is an error, not "42"); other column types take their
// own type; a driver.Valuer is read first; NULL is an error. Choosers
// written for the session therefore receive column-typed values (an int64
// for an int64 column even when the caller passed an int).
//
// A Get without key values re-reads an object on the shard its [Token]
// records, asking no chooser; with key values it loads a new identity
// from wherever the pin or the IdentityChooser says (see [Session.Get]).
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
// reported as a *[ShardError] at once, without waiting for a shard that
// hangs. Statements the session cannot answer
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
// page costs what the first one does.
//
// The merge compares values as PostgreSQL does, choosing the comparison
// from the column's SQL type (the `type:` tag, else Bun's type for the Go
// field), not only its Go type: integers, floats (NaN above every number),
// booleans, times, uuid and bytea directly; numeric/decimal exactly, held
// in a Go string (any precision; 1, 1.0 and 1.00 are equal, one group;
// NaN above Infinity) or an integer; text and char(n) only with
// COLLATE "C" (byte order, the same in SQL and in the merge), char(n)
// ignoring trailing spaces. A column it cannot compare exactly fails with
// [ErrUnsupported] naming it: numeric in a float64 field, json, arrays,
// citext, enums and other types, and a nullzero field that is not a
// pointer and not notnull (a NULL and a real zero both scan as zero; make
// it a pointer). Sums and averages of integer and numeric columns are
// exact and rendered as PostgreSQL renders them. The failure
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
// chooser.RelationRouter vets, before Insert, Update and a unit's flush
// send anything, the objects held in relation fields ([ErrRelationDenied]),
// and a chooser.MigrateRouter decides where placement puts tables. When the
// RelationRouter abstains, or there is none, one default decides every
// path: chooser.SameShard refuses a relation between objects placed on two
// different shards (a unit begun with AllowCrossShard waives it). Without
// a MigrateRouter every table goes to every shard.
//
// A Bun query passed as an argument (Where("id IN (?)", sub)) is inlined
// into the statement and runs on the statement's shards: one built on
// another shard's handle, or on a database that is no shard, fails the
// statement with [ErrInvalidArgument] before anything is sent. Build a
// subquery meant for each shard inside Apply, on the shard's query
// (b.NewSelect()).
//
// Per-statement routing by name is [SetShardID] and [Session.Using];
// per-request routing is [WithShardID] in the request's context, which every
// goroutine started from it carries too (examples/tenant_http has a net/http
// middleware that picks the tenant's shard).
//
// # Layouts
//
// [Session.CreateTables] and [Session.DropTables] create and drop the tables
// of a set of models on exactly the shards the MigrateRouter allows (among
// the shards of a [Session.Using] view or context pin, if there is one:
// Using("a").DropTables touches no other shard);
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
// # Relation loads
//
// [Session.LoadRelation] loads a relation (has-one, belongs-to, has-many,
// m2m, or a dotted path) of objects already in memory: parents are grouped
// by the shard on their Token and each group costs one statement with all
// its keys in an IN list, so a relation costs one statement per shard
// (SQLAlchemy's selectin loading sends every shard's keys to every shard:
// 20 statements for BENCH.md's W6 where bunshard sends 8). The statement
// goes to the parents' shard unless a pin says otherwise, a [SetShardID]
// pin propagates from the statement that loaded the parents (as
// SQLAlchemy's set_shard_id does), and the ExecuteChooser is told the
// parents' shard (chooser.Statement.LoadedFrom) so that it can send a
// relation that lives elsewhere by design.
//
// # Unit of work
//
// [Session.Begin] starts a [UnitOfWork], SQLAlchemy's Session: an identity
// map keyed by (model, primary key, shard), so the same key on two shards is
// two objects and a Get of a tracked key sends nothing; one transaction per
// shard, begun when the unit first touches the shard; Add, Delete, Flush,
// Commit, Rollback, Refresh and Expunge. A flush writes each shard in its
// transaction: one INSERT per shard per model, parents before children and
// children placed with their parents (the owner of a has-many, or
// chooser.FollowParent for belongs-to), and the join rows of a new object's
// many-to-many relations on its shard; UPDATEs of the changed columns only,
// found by comparing each object with a snapshot; DELETEs children first.
// A partial select (Column, ColumnExpr, ExcludeColumn) tracks nothing, so
// the identity map only ever holds complete objects. A unit is for one
// goroutine; the Session stays safe for concurrent use.
//
// Every statement of a unit, its BEGIN and COMMIT included, runs under the
// context of the call that sends it, and a unit's transactions live until
// Commit or Rollback, whatever contexts its calls had. So a unit must be
// ended: [Session.RunInTx] does it always (commit when its function returns
// nil, roll back on an error or a panic), and [Session.OpenUnits] counts
// the units holding transactions, so that one left open can be noticed.
//
//	uow := sess.Begin(session.TwoPhase())
//	defer uow.Rollback(ctx) // does nothing after Commit
//	var loc *Location
//	err = uow.Get(ctx, &loc, 7) // tracked; a second Get sends nothing
//	loc.City = "Kyoto"          // flushed as UPDATE ... SET city = 'Kyoto'
//	err = uow.Add(&Report{Location: loc, Temperature: 21})
//	err = uow.Commit(ctx)       // PREPARE, the coordinator's COMMIT decides, COMMIT PREPARED
//
// # Commit across shards
//
// Without [TwoPhase], Commit commits each shard on its own, and a partial
// commit is possible: some shards keep the unit's writes and others do not.
// The error, a *[CommitError], says which are which (SQLAlchemy does the
// same without twophase=True, and does not say). With TwoPhase the outcome
// is all or nothing, and unlike SQLAlchemy's twophase=True it survives a
// crash at any point: the coordinator shard ([WithCoordinator]) records the
// decision in its bunshard_decisions table inside its own transaction,
// every other shard runs PREPARE TRANSACTION, and the coordinator's
// one-phase COMMIT, flushed to its WAL whatever the server's
// synchronous_commit, is the decision; then the others run COMMIT PREPARED.
// [Session.Recover] resolves whatever prepared transactions a crash,
// stopped shard or lost connection left: commit where the record says
// commit, roll back where there is none and none can be written any more
// (the coordinator's transaction ended without committing). Run Recover at
// start-up and after a two-phase Commit error, from a session with the same
// coordinator, and with every shard, or again later from one that has the
// shards it lacked.
//
// # Concurrency
//
// A Session is safe for concurrent use and keeps no per-object state.
// SelectQuery, UpdateQuery and DeleteQuery are builders: build one in one
// goroutine, then run it. A UnitOfWork is not safe for concurrent use; two
// goroutines calling it at once get [ErrConcurrentUse], and the unit then
// commits nothing.
package session
