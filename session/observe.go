package session

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"sync/atomic"
	"time"
)

// Observer hears what the session's statements do, for tracing and metrics
// (extra/bunshardotel implements it with OpenTelemetry). It is installed
// with [WithObserver]; without one, the session calls nothing and
// allocates nothing for it.
//
// StartStatement is called as a statement begins (a select's Scan,
// ScanPage, Count, Exists, CountByShard, ScanByShard or Iter, a Get, an
// InsertQuery, UpdateQuery, DeleteQuery or RawQuery statement, an Insert,
// Update or Delete). It returns the context the statement
// runs under, which every shard's part and every Bun hook sees (a tracer
// returns one carrying the statement's span), and the StatementObserver
// that hears the rest of it; a nil StatementObserver hears nothing more.
//
// Further abilities are separate interfaces, found by type assertion on
// the Observer: [TwoPhaseObserver], [RecoverObserver] and
// [ReplicaObserver].
//
// An Observer is called from many goroutines at once (one per shard of a
// fan-out) and must be safe for that. Its methods must not fail or block:
// they run on the statement's path.
type Observer interface {
	StartStatement(ctx context.Context, st Statement) (context.Context, StatementObserver)
}

// Statement names a statement for an [Observer].
type Statement struct {
	// Op is what it does: "select", "count", "exists", "get", "update",
	// "delete", "insert" or "raw" (NewRaw's Scan and Exec).
	Op string
	// Model is the Go type name of its model ("Book"), or "" when the
	// statement failed before its model was known.
	Model string
}

// StatementObserver hears one statement, from its route to its end. Its
// methods are called in this order: Routed at most once (not at all when
// routing failed), StartShard once per shard the statement runs on (from
// the shards' goroutines, concurrently), StartMerge at most once, after
// the shards, then End exactly once.
type StatementObserver interface {
	// Routed says where the statement runs: r.Shards in order, r.By the
	// rule that chose them ("option", "using", "context", "chooser",
	// "token", "criteria" or, for Insert, Update and Delete of objects,
	// "placement"). scatter is true when the chooser sent it to every
	// shard of a session of several.
	Routed(r Route, scatter bool)
	// StartShard is called as the statement's part on shard id starts; the
	// part runs under the returned context (Bun's query hooks on the shard's
	// *bun.DB see it). The returned ShardObserver's End is called when the
	// part ends, with the rows it read and its error.
	StartShard(ctx context.Context, id ShardID) (context.Context, ShardObserver)
	// StartMerge is called as the rows of inputs shards start being merged
	// into one result (a k-way merge or concatenation with the global
	// window, or an aggregate's group merge). End is called when the merge
	// ends, with the rows it produced.
	StartMerge(ctx context.Context, inputs int) ShardObserver
	// End is called once when the statement ends: rows is the number of
	// rows it returned (read statements) or affected (writes), -1 when it
	// has no such number; err is its error, nil on success (a
	// *[PartialError] when AllowPartial left some shards out).
	End(rows int64, err error)
}

// ShardObserver hears the end of one part of a statement: a shard's part,
// or the merge.
type ShardObserver interface {
	End(rows int64, err error)
}

// The phases of a two-phase commit, as a [PhaseObserver] hears them.
const (
	PhasePrepare          = "prepare"           // the decision record, then PREPARE TRANSACTION on every other shard
	PhaseDecide           = "decide"            // the coordinator's COMMIT, which is the decision
	PhaseCommitPrepared   = "commit prepared"   // COMMIT PREPARED on every other shard
	PhaseRollbackPrepared = "rollback prepared" // ROLLBACK PREPARED of what a failed commit prepared
)

// The outcomes of a two-phase commit, as [PhaseObserver.End] hears them.
const (
	OutcomeCommitted = "committed" // every shard committed
	OutcomeAborted   = "aborted"   // nothing committed, nothing left prepared
	// OutcomeRecover: some shard's transaction is left prepared (or the
	// decision is in doubt); [Session.Recover] finishes it.
	OutcomeRecover = "recover"
)

// TwoPhaseObserver is an [Observer] that also hears two-phase commits
// (a UnitOfWork's Commit with TwoPhase over two shards or more).
type TwoPhaseObserver interface {
	// StartTwoPhase is called as the commit of writers, decided on
	// coordinator, begins; the commit runs under the returned context.
	StartTwoPhase(ctx context.Context, writers []ShardID, coordinator ShardID) (context.Context, PhaseObserver)
}

// PhaseObserver hears one two-phase commit.
type PhaseObserver interface {
	// StartPhase is called as a phase begins (PhasePrepare, PhaseDecide,
	// PhaseCommitPrepared, PhaseRollbackPrepared), and ends the phase
	// before it; the phase runs under the returned context.
	StartPhase(ctx context.Context, phase string) context.Context
	// End is called once as the commit returns, with its outcome
	// (OutcomeCommitted, OutcomeAborted or OutcomeRecover) and error.
	End(outcome string, err error)
}

// RecoverObserver is an [Observer] that also hears [Session.Recover].
type RecoverObserver interface {
	// StartRecover is called as Recover begins; it runs under the
	// returned context. End is called with what it did and its error.
	StartRecover(ctx context.Context) (context.Context, RecoverEnd)
}

// RecoverEnd hears the end of one [Session.Recover].
type RecoverEnd interface {
	End(r Recovered, err error)
}

// ReplicaObserver is an [Observer] that also hears replica choices and
// replica health checks (sessions with [WithReplicas]).
type ReplicaObserver interface {
	// ReplicaChosen is called when a read of a shard that has replicas
	// picks where it runs, under the shard part's context.
	ReplicaChosen(ctx context.Context, c ReplicaChoice)
	// ReplicaChecked is called after each health check of a replica,
	// from the checker's goroutine.
	ReplicaChecked(c ReplicaCheck)
}

// ReplicaChoice is where one read of a shard with replicas ran.
type ReplicaChoice struct {
	Shard ShardID
	// Replica is the index of the replica (in the order of WithReplicas),
	// or -1 for the primary.
	Replica int
	// Reason says why: "replica"; for the primary "primary requested"
	// (WithPrimary), "read your writes" (a write the replicas may lack),
	// "no replica ready" (none healthy and caught up) or "retry" (the
	// replica failed before the read reached it, and the read ran again on
	// the primary).
	Reason string
}

// ReplicaCheck is the result of one replica health check.
type ReplicaCheck struct {
	Shard   ShardID
	Replica int
	Healthy bool
	// Lag is how far the replica's replay is behind: 0 when it has
	// replayed all it received, else the time since the last transaction
	// it replayed committed on the primary. -1 when unknown (a failed
	// check, or nothing replayed yet).
	Lag time.Duration
	// ReplayLSN is how far it has replayed the primary's WAL.
	ReplayLSN LSN
	Err       error
}

// WithObserver installs o to hear the session's statements (see
// [Observer]). A nil o installs nothing.
func WithObserver(o Observer) Option {
	return func(c *config) { c.observer = o }
}

// stmtRec is an observed statement, carried in the contexts of its parts.
// nil when no observer is installed: every method is then a no-op.
type stmtRec struct {
	obs StatementObserver
}

type stmtKey struct{}

// shardRec is one observed shard part, carried in its context so that the
// code reading rows can count them (readRows).
type shardRec struct {
	rows atomic.Int64
}

type shardKey struct{}

// observe starts observing a statement: it returns the context the
// statement runs under and its record (nil, and ctx untouched, without an
// observer).
func (s *Session) observe(ctx context.Context, op string, mi *modelInfo) (context.Context, *stmtRec) {
	if s.cfg.observer == nil {
		return ctx, nil
	}
	st := Statement{Op: op}
	if mi != nil {
		st.Model = mi.table.TypeName
	}
	ctx, so := s.cfg.observer.StartStatement(ctx, st)
	if so == nil {
		return ctx, nil
	}
	rec := &stmtRec{obs: so}
	return context.WithValue(ctx, stmtKey{}, rec), rec
}

// routed reports the statement's route to its observer.
func (s *Session) routed(ctx context.Context, r Route) {
	if s.cfg.observer == nil {
		return
	}
	if rec, _ := ctx.Value(stmtKey{}).(*stmtRec); rec != nil {
		scatter := r.By == "chooser" && len(s.order) > 1 && len(r.Shards) == len(s.order)
		rec.obs.Routed(r, scatter)
	}
}

// end reports the statement's end; rows is -1 when unknown.
func (r *stmtRec) end(rows int64, err error) {
	if r != nil {
		r.obs.End(rows, err)
	}
}

// endScan reports the end of a statement that scanned into dest: the rows
// returned are the length of the slice dest points to, or 1 for a struct.
func (r *stmtRec) endScan(err error, dest ...any) {
	if r == nil {
		return
	}
	rows := int64(-1)
	if len(dest) > 0 {
		v := reflect.ValueOf(dest[0])
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			switch e := v.Elem(); {
			case e.Kind() == reflect.Slice:
				rows = int64(e.Len())
			case err == nil:
				rows = 1
			default:
				rows = 0
			}
		}
	}
	r.obs.End(rows, err)
}

// startShard starts observing the part of a statement on shard id, when
// ctx is an observed statement's: it returns the context the part runs
// under and a function ending it (nil when not observed).
func (s *Session) startShard(ctx context.Context, id ShardID) (context.Context, func(error)) {
	rec, _ := ctx.Value(stmtKey{}).(*stmtRec)
	if rec == nil {
		return ctx, nil
	}
	ctx, so := rec.obs.StartShard(ctx, id)
	if so == nil {
		return ctx, nil
	}
	sr := new(shardRec)
	ctx = context.WithValue(ctx, shardKey{}, sr)
	return ctx, func(err error) { so.End(sr.rows.Load(), err) }
}

// readRows counts n rows read by the shard part that ctx belongs to, when
// it is observed.
func (s *Session) readRows(ctx context.Context, n int64) {
	if s.cfg.observer == nil {
		return
	}
	if sr, _ := ctx.Value(shardKey{}).(*shardRec); sr != nil {
		sr.rows.Add(n)
	}
}

// startMerge starts observing a merge of inputs shards' rows, when ctx is
// an observed statement's; the result's End (nil-safe through endMerge)
// ends it.
func (s *Session) startMerge(ctx context.Context, inputs int) ShardObserver {
	if s.cfg.observer == nil {
		return nil
	}
	rec, _ := ctx.Value(stmtKey{}).(*stmtRec)
	if rec == nil {
		return nil
	}
	return rec.obs.StartMerge(ctx, inputs)
}

func endMerge(m ShardObserver, rows int64, err error) {
	if m != nil {
		m.End(rows, err)
	}
}

// twoPhaseKey carries a two-phase commit's PhaseObserver in its context.
type twoPhaseKey struct{}

// observeTwoPhase starts observing a two-phase commit; end reports its
// outcome from the error Commit returns.
func (s *Session) observeTwoPhase(ctx context.Context, writers []ShardID) (context.Context, func(error)) {
	tp, ok := s.cfg.observer.(TwoPhaseObserver)
	if !ok {
		return ctx, func(error) {}
	}
	ctx, po := tp.StartTwoPhase(ctx, writers, s.cfg.coordinator)
	if po == nil {
		return ctx, func(error) {}
	}
	return context.WithValue(ctx, twoPhaseKey{}, po), func(err error) { po.End(outcome(err), err) }
}

// phase marks the start of a two-phase commit's phase, when observed.
func (s *Session) phase(ctx context.Context, name string) context.Context {
	if s.cfg.observer == nil {
		return ctx
	}
	if po, _ := ctx.Value(twoPhaseKey{}).(PhaseObserver); po != nil {
		return po.StartPhase(ctx, name)
	}
	return ctx
}

// outcome classifies the error of a two-phase Commit.
func outcome(err error) string {
	if err == nil {
		return OutcomeCommitted
	}
	var ce *CommitError
	if errors.As(err, &ce) && (len(ce.Pending) > 0 || errors.Is(err, ErrInDoubt)) {
		return OutcomeRecover
	}
	return OutcomeAborted
}

// observeRecover starts observing a Recover.
func (s *Session) observeRecover(ctx context.Context) (context.Context, RecoverEnd) {
	if ro, ok := s.cfg.observer.(RecoverObserver); ok {
		return ro.StartRecover(ctx)
	}
	return ctx, nil
}

// lenOf is the length of a merged slice, 0 for none (a failed merge).
func lenOf(v reflect.Value) int64 {
	if !v.IsValid() {
		return 0
	}
	return int64(v.Len())
}

// replicaChosen reports where a read of shard id runs: on replica r, or
// on the primary when r is nil (and why).
func (s *Session) replicaChosen(ctx context.Context, id ShardID, r *replica) {
	ro, ok := s.cfg.observer.(ReplicaObserver)
	if !ok {
		return
	}
	c := ReplicaChoice{Shard: id, Replica: -1}
	switch {
	case r != nil:
		c.Replica, c.Reason = r.index, "replica"
	case s.replicas.byShard[id] == nil:
		return // the shard has no replicas: nothing was chosen
	case usePrimary(ctx):
		c.Reason = "primary requested"
	default:
		c.Reason = "no replica ready"
		if t := trackerOf(ctx, s.replicas); t != nil && t.need(id) == primaryOnly {
			c.Reason = "read your writes"
		}
	}
	ro.ReplicaChosen(ctx, c)
}

// replicaRetry reports a read of shard id run again on its primary after
// its replica failed.
func (s *Session) replicaRetry(ctx context.Context, id ShardID) {
	if ro, ok := s.cfg.observer.(ReplicaObserver); ok {
		ro.ReplicaChosen(ctx, ReplicaChoice{Shard: id, Replica: -1, Reason: "retry"})
	}
}

// report tells obs the state a health check of r left it in.
func (r *replica) report(obs ReplicaObserver, lag sql.NullFloat64) {
	c := ReplicaCheck{Shard: r.shard, Replica: r.index, Healthy: r.healthy.Load(), ReplayLSN: LSN(r.lsn.Load()), Lag: -1}
	r.mu.Lock()
	c.Err = r.err
	r.mu.Unlock()
	if c.Healthy && lag.Valid {
		c.Lag = time.Duration(lag.Float64 * float64(time.Second))
	}
	obs.ReplicaChecked(c)
}
