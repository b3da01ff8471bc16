// Command bunshard operates the shards of an app built on bunshard: Bun migrations on every
// shard, resolution of prepared two-phase transactions, a health check, and where a key goes.
//
//	go run github.com/bunshard/bunshard/cmd/bunshard@latest --config shards.toml check
//	go install github.com/bunshard/bunshard/cmd/bunshard@latest
//
// Subcommands:
//
//	migrate up|down|status|create NAME   Bun migrations from a directory of SQL files, on every shard
//	recover                              session.Recover: resolve prepared transactions, one line each
//	check                                ping, role, replica lag, old prepared transactions, tables
//	route TABLE KEY...                   where rows with these keys go under the config's scheme
//
// Results print as a table on standard output, or as JSON with --json. Long work reports
// progress on standard error: a bar on a terminal, one plain line per step otherwise.
//
// # Configuration
//
// A TOML file (--config, or the environment variable BUNSHARD_CONFIG):
//
//	coordinator = "eu"      # two-phase coordinator; default: the first shard id, sorted
//	driver = "pgdriver"     # or "pgx"
//
//	[[shard]]
//	name = "eu"
//	dsn = "postgres://app@eu-db:5432/app?sslmode=disable"
//
//	[[shard]]
//	name = "us"
//	dsn = "postgres://app@us-db:5432/app?sslmode=disable"
//
//	[migrate]
//	dir = "migrations"      # Bun's SQL files: NAME.up.sql, NAME.down.sql, NAME.tx.up.sql
//	concurrency = 4
//
//	[[route]]               # for bunshard route
//	table = "accounts"
//	column = "region"
//	type = "string"         # or "int"
//	scheme = "values"       # hash (buckets, shards), jump (shards), ranges, values
//	[route.values]
//	eu = "eu"
//	us = "us"
//
// Unknown keys are an error. The environment overrides the file: BUNSHARD_SHARDS
// (name=dsn,name=dsn,...), BUNSHARD_COORDINATOR, BUNSHARD_DRIVER, BUNSHARD_MIGRATIONS. A
// routing scheme is structured, so it is declared in the file only.
//
// # Exit codes
//
//	0  done, and nothing needs attention
//	1  a shard failed or could not be reached (the result still lists every shard)
//	2  bad flags, configuration or input: nothing was sent
//	3  done, and something needs attention: migrations pending (migrate status), prepared
//	   transactions left (recover), old prepared transactions or replica lag (check)
package main
