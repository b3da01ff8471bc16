// Package planner is the pure planning half of a sharded select: it parses
// ORDER BY terms into typed comparators, plans and merges grouped
// aggregates, and encodes and decodes keyset cursors. Nothing here talks to
// a database; package session builds the per-shard Bun queries from a plan,
// runs them, and hands the rows back to the plan to merge (Vitess's vtgate
// keeps its plans apart from their execution the same way).
//
// Every comparison follows PostgreSQL: a column is compared by its SQL type
// (Bun's schema.Field.DiscoveredSQLType) and its Go type, so numeric held
// in a string compares as a decimal, char(n) without trailing spaces, a
// float NaN above every number. What cannot be compared exactly is refused
// with an [*Error] of Fault [Unsupported], never guessed.
//
//	k, err := planner.ParseOrder(table, "temperature DESC")
//	if err != nil { ... }                      // *planner.Error, Fault Invalid
//	if err := planner.Mergeable([]planner.Key{k}); err != nil { ... } // Fault Unsupported
//	c := planner.CompareRows([]planner.Key{k}, rowA, rowB) // as PostgreSQL orders them
//
// It imports Bun's schema package (model metadata, identifiers) and
// internal/numeric, and nothing else of this module or of Bun.
package planner
