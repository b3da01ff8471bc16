package session

import (
	"maps"
	"sync"
)

// Option configures a [Session] at construction.
type Option func(*config)

type config struct {
	replicas    replicaConfig
	concurrency int
	probe       Probe
	order       []ShardID
	noScatter   bool
	coordinator ShardID
	hook        func(stage string, id ShardID) // two-phase fault injection, for tests
	observer    Observer                       // nil: nothing observed (observe.go)
	fold        bool                           // WithFolding (fold.go)
	folds       *foldCache                     // made by New under WithFolding, shared by views
}

// WithCoordinator names the shard that holds the two-phase commit decision
// records (the bunshard_decisions table; see [Session.Recover]). The
// default is the first shard in shard order. New fails for an unknown id.
// Every process that commits with TwoPhase, or recovers, on the same shards
// must use the same coordinator.
func WithCoordinator(id ShardID) Option {
	return func(c *config) { c.coordinator = id }
}

// Probe is how Get asks its candidate shards.
type Probe uint8

const (
	// ProbeConcurrent asks every candidate at once and waits for all of
	// them. A key found on two candidates is [ErrAmbiguous]; a failing
	// candidate fails the Get, since the key might live there. The default.
	ProbeConcurrent Probe = iota
	// ProbeInOrder asks the candidates one at a time in the chooser's order
	// and stops at the first that has the key. It sends fewer statements
	// when the chooser lists the likely shard first, but cannot notice a key
	// present on two shards.
	ProbeInOrder
)

// WithConcurrency bounds how many shards one statement queries at the same
// time (default: all of them). n < 1 means no bound.
func WithConcurrency(n int) Option {
	return func(c *config) { c.concurrency = n }
}

// WithShardOrder sets the session's shard order: the order "all shards"
// means, in which concatenated results come back and ProbeInOrder asks.
// ids must name every shard exactly once; New fails otherwise. The default
// is the shard ids sorted.
func WithShardOrder(ids ...ShardID) Option {
	ids = append([]ShardID(nil), ids...)
	return func(c *config) { c.order = ids }
}

// WithProbe sets how Get asks its candidate shards (default
// [ProbeConcurrent]).
func WithProbe(p Probe) Option {
	return func(c *config) { c.probe = p }
}

// StatementOption adjusts one statement: where it runs, and (for fan-outs)
// how it treats failures.
type StatementOption func(*stmtOptions)

type stmtOptions struct {
	shards   []ShardID // nil: no pin; non-nil: pinned here (empty: to nothing, an error)
	pinWins  bool
	partial  bool
	scatter  scatterRule
	stats    *Stats
	sync     SyncMode // synchronize.go
	written  []string // an UPDATE of objects' Column list (nil: every column), for keyMoved
	perShard bool     // a raw statement's per-shard answers, concatenated, are what the caller wants
}

// Stats receives what a statement did on each shard. It is filled while the
// statement runs and safe to read once the statement (or Iter's loop) ends.
type Stats struct {
	mu       sync.Mutex
	rowsRead map[ShardID]int64
}

// RowsRead returns the rows scanned from each shard (by Scan of a slice,
// ScanPage and Iter).
func (st *Stats) RowsRead() map[ShardID]int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return maps.Clone(st.rowsRead)
}

func (st *Stats) add(id ShardID, rows int64) {
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rowsRead == nil {
		st.rowsRead = map[ShardID]int64{}
	}
	st.rowsRead[id] += rows
}

// CollectStats makes the statement record what it did per shard in st.
func CollectStats(st *Stats) StatementOption {
	return func(o *stmtOptions) { o.stats = st }
}

type scatterRule uint8

const (
	scatterDefault scatterRule = iota
	scatterAllow
	scatterDeny
)

// WithScatterGuard makes every statement that would run on every shard
// (a select, update, delete or Get the chooser sends everywhere) fail with
// [ErrScatter], unless the statement carries [AllowScatter]. Apps turn it on
// to be sure their hot paths stay on one shard.
func WithScatterGuard() Option {
	return func(c *config) { c.noScatter = true }
}

// DenyScatter makes this statement fail with [ErrScatter] if the chooser
// would send it to every shard.
func DenyScatter() StatementOption {
	return func(o *stmtOptions) { o.scatter = scatterDeny }
}

// PerShard lets a raw statement ([Session.NewRaw]) on several shards hold
// clauses that each shard applies to its own rows only (ORDER BY, LIMIT,
// OFFSET, DISTINCT, GROUP BY, aggregates, windows, UNION, INTERSECT,
// EXCEPT): each shard's own answer, concatenated in route order, is what
// the caller wants, such as one count per shard. Without it such a
// statement is [ErrUnsupported] before anything is sent. Other statements
// ignore it.
func PerShard() StatementOption {
	return func(o *stmtOptions) { o.perShard = true }
}

// AllowScatter lets this statement run on every shard despite
// [WithScatterGuard].
func AllowScatter() StatementOption {
	return func(o *stmtOptions) { o.scatter = scatterAllow }
}

// AllowPartial lets a fanned-out select return the rows of the shards that
// answered when others fail. The error is then a *[PartialError] that lists
// every failed shard, so it cannot go unnoticed; the results are complete
// only when the error is nil. Without it (the default) the first failing
// shard cancels the others and the statement fails.
func AllowPartial() StatementOption {
	return func(o *stmtOptions) { o.partial = true }
}

// SetShardID pins a statement to shard id: the statement, and every relation
// query it makes, run there and nowhere else, and no chooser is asked. It takes
// precedence over a Using view and a shard in the context. An unknown id
// fails the statement with [ErrUnknownShard], the empty id with
// [ErrInvalidArgument].
func SetShardID(id ShardID) StatementOption {
	return func(o *stmtOptions) { o.shards = []ShardID{id} }
}

// SetShardIDs pins a statement to the given shards, in this order, as
// [SetShardID] does for one. A pin never means "every shard": SetShardIDs()
// with no ids fails the statement with [ErrInvalidArgument] before anything
// is sent (leave the option out to let the chooser route).
func SetShardIDs(ids ...ShardID) StatementOption {
	ids = append([]ShardID{}, ids...) // non-nil even when empty: a pin to nothing
	return func(o *stmtOptions) { o.shards = ids }
}
