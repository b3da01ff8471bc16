package session

// WithTwoPhaseHook calls h at each stage of a two-phase Commit:
// "prepared" (every shard prepared, no decision yet) and "decided" (the
// commit decision recorded, nothing committed) from the committing
// goroutine, where a test may panic to simulate a crash; and "commit" with
// a shard id, just before that shard's COMMIT PREPARED, from the goroutine
// that sends it (stop a server or kill a connection there; do not panic).
func WithTwoPhaseHook(h func(stage string, id ShardID)) Option {
	return func(c *config) { c.hook = h }
}
