package session

// WithTwoPhaseHook calls h at each stage of a two-phase Commit: "txid"
// (with the unit's txid as id, before anything is sent), "prepared" (every
// shard but the coordinator prepared, no decision yet) and "decided" (the
// coordinator committed, with the decision; nothing else committed) from
// the committing
// goroutine, where a test may panic to simulate a crash; and "commit" with
// a shard id, just before that shard's COMMIT PREPARED, from the goroutine
// that sends it (stop a server or kill a connection there; do not panic).
func WithTwoPhaseHook(h func(stage string, id ShardID)) Option {
	return func(c *config) { c.hook = h }
}
