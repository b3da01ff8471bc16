package session

// WithTwoPhaseHook calls h at each stage of a two-phase Commit, from the
// committing goroutine: "prepared" (every shard prepared, no decision yet),
// "decided" (the commit decision recorded, nothing committed), and "commit"
// with a shard id (just before that shard's COMMIT PREPARED). Fault tests
// stop servers, kill connections or panic (a simulated crash) there.
func WithTwoPhaseHook(h func(stage string, id ShardID)) Option {
	return func(c *config) { c.hook = h }
}
