// Package migrate runs Bun migrations (github.com/uptrace/bun/migrate) on
// every shard of a sharded fleet. It is not a second migration system: the
// migrations are Bun's (Go funcs registered with Register or Add, SQL files
// found with Discover, .tx.up.sql in a transaction, --bun:split between
// statements), and each shard has its own Bun migrator, with Bun's own
// tables (bun_migrations, bun_migration_locks) and lock on that shard.
//
// # Running
//
// [New] takes the shards as a [Shards] (a *session.Session is one, and so
// is [DBs], a plain map of *bun.DB) and one *migrate.Migrations. [Migrator.Init]
// creates Bun's tables on every shard. [Migrator.Migrate] migrates every
// shard concurrently (at most [WithConcurrency] at a time), each under its
// own lock and as one new migration group of that shard, and returns a
// [Report]: per shard the group, the migrations applied, the migration that
// failed and the error. A shard's failure stops no other shard, and the
// error returned joins the failed shards' errors, each naming its shard.
//
// # Resuming
//
// A migration is recorded only once it succeeded (the Bun migrators run
// with WithMarkAppliedOnSuccess), so a failed shard records the migrations
// before the failing one. The next Migrate applies, on each shard, what that
// shard has not recorded: the failed shard resumes from its failing
// migration (as a new group of its own), and shards that succeeded apply
// nothing. A non-transactional migration that fails half-way leaves what it
// did, as with Bun on one database: prefer .tx.up.sql files, and Go
// migrations that run in a transaction.
//
// # Status and rollback
//
// [Migrator.Status] reads every shard's applied migrations (one SELECT per
// shard) and returns per shard the applied, pending and missing migrations,
// the last group, and LastErr, the error of this Migrator's last run on the
// shard. "failed" ([ShardStatus.State]) is that in-memory error; read by
// another process later, a failed shard is one with pending migrations,
// the failed one first. [Migrator.Rollback] rolls back each shard's own
// last group: after a resumed failure, that group differs between shards.
// [Migrator.Unlock] releases locks left by a process that died.
//
// # Limiting a migration
//
// [WithScope] limits a migration to [OnShards] and/or to the shards where
// [ForModels]' models are, as the [WithRouter] chooser.MigrateRouter says
// (the same rule the session uses to place tables: only Deny keeps a table
// off a shard). On a shard the scope excludes, the migration is recorded as
// applied without running, and reported in [ShardResult.Skipped]: so every
// shard records every migration, Pending always means work to do, and
// rolling back a group treats every shard alike. A migration whose models
// are partly allowed on a shard fails there with [ErrAmbiguous].
//
// # Example
//
//	import (
//		"github.com/uptrace/bun/migrate"
//		shardmigrate "github.com/bunshard/bunshard/migrate"
//	)
//
//	//go:embed migrations
//	var files embed.FS
//
//	migrations := migrate.NewMigrations() // Bun's package
//	if err := migrations.Discover(files); err != nil { ... }
//	m, err := shardmigrate.New(sess, migrations, // sess is a *session.Session
//		shardmigrate.WithRouter(router), // e.g. the session's ShardChooser
//		shardmigrate.WithScope("20260101000002", shardmigrate.ForModels((*Tag)(nil))),
//	)
//	if err != nil { ... }
//	if err := m.Init(ctx); err != nil { ... }
//	report, err := m.Migrate(ctx)
//	for _, res := range report {
//		log.Printf("%s: group %d: %s, failed %q: %v", res.Shard, res.GroupID, res.Migrations, res.Failed, res.Err)
//	}
//	if err != nil { ... } // fix the cause, then Migrate again: only the failed shards move
//
// # Concurrency
//
// A [Migrator] is safe for concurrent use. Two runs on one shard at a time
// (in one process or two) do not both proceed: the second fails on that
// shard's lock, by name.
package migrate
