// Package bunshardotel traces and measures a bunshard session with
// OpenTelemetry, as Bun's extra/bunotel does for one *bun.DB. It implements
// [session.Observer] (and its two-phase, Recover and replica extensions):
//
//	obs, err := bunshardotel.New() // the global providers, or WithTracerProvider/WithMeterProvider
//	if err != nil { ... }
//	s, err := session.New(shards, sc, ic, ec, session.WithObserver(obs))
//
// Each sharded statement gets a span ("bunshard.select", "bunshard.get",
// ...) with a child span per shard ("bunshard.shard", carrying the shard id
// and the rows it read) and one for the merge ("bunshard.merge"). A
// two-phase commit gets "bunshard.commit" with one child per phase, Recover
// "bunshard.recover", and a read of a shard with replicas a
// "bunshard.replica" span under its shard's. Metrics: per-shard statement
// latency, fan-out width, scatters, partial results, two-phase outcomes,
// Recover's results, replica choices, lag and health. docs/observability.md
// lists every name and attribute.
//
// It works beside bunotel: install bunotel's query hook on each shard's
// *bun.DB, and Bun's per-query spans become children of the per-shard span,
// since each shard's statement runs under the context that carries it.
//
// The session package does not import OpenTelemetry; without
// session.WithObserver it calls nothing of this package.
package bunshardotel
