package session

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/fanout"
)

// The defaults of [WithReplicaCheck].
const (
	DefaultReplicaCheckInterval = time.Second
	DefaultReplicaCheckTimeout  = time.Second
)

// replicaConfig is what the replica options collect.
type replicaConfig struct {
	dbs      map[ShardID][]bun.IDB
	interval time.Duration
	timeout  time.Duration
}

// WithReplicas gives shard id read replicas, streaming hot standbys of its
// primary (the *bun.DB of id in New), each built on the session's shared
// dialect. New fails with [ErrUnknownShard] for an unknown shard, and with
// [ErrInvalidArgument] for a nil replica, another dialect, or a shard whose
// handle is no *bun.DB (a bun.Tx keeps its statements on its connection).
// Calling it again for a shard adds replicas.
//
// Reads of the shard then go to a replica, in turns among the healthy ones
// (see the package documentation, "Replicas"). A replica is marked down when
// a read on it fails because it cannot be reached (the connection is
// refused, lost or closed by a shutdown) or when a health check fails; it is
// used again after a check succeeds. Such a read is run again on the primary
// when it is safe to: when the failure came before the statement reached the
// replica, or in the first statement of the read (relation queries of a
// has-many or m2m relation add rows to the destination, so a read that fails
// in one of them is not repeated: it fails, as a failure of the primary
// would).
func WithReplicas(id ShardID, replicas ...bun.IDB) Option {
	replicas = append([]bun.IDB(nil), replicas...)
	return func(c *config) {
		if c.replicas.dbs == nil {
			c.replicas.dbs = map[ShardID][]bun.IDB{}
		}
		c.replicas.dbs[id] = append(c.replicas.dbs[id], replicas...)
	}
}

// WithReplicaCheck sets how often every replica is health-checked (default
// [DefaultReplicaCheckInterval]) and how long one check may take (default
// [DefaultReplicaCheckTimeout]). A check asks the replica whether it is in
// recovery and how far it has replayed the primary's WAL
// (pg_last_wal_replay_lsn); a replica that fails, times out or has been
// promoted is marked down. Checks run on one goroutine per session, started
// by the first read that may use a replica and stopped by [Session.Close].
// Zero or negative values keep the defaults.
func WithReplicaCheck(interval, timeout time.Duration) Option {
	return func(c *config) {
		if interval > 0 {
			c.replicas.interval = interval
		}
		if timeout > 0 {
			c.replicas.timeout = timeout
		}
	}
}

// LSN is a PostgreSQL write-ahead log position (pg_lsn), 0 when unknown.
type LSN uint64

// String renders the position as PostgreSQL does, "16/B374D848".
func (l LSN) String() string {
	return strings.ToUpper(strconv.FormatUint(uint64(l)>>32, 16) + "/" + strconv.FormatUint(uint64(l)&0xFFFFFFFF, 16))
}

// parseLSN parses "16/B374D848".
func parseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("session: bad pg_lsn %q", s)
	}
	return LSN(h<<32 | l), nil
}

// primaryOnly is the tracker's mark for a shard whose write position is
// unknown: only the primary is sure to have the write.
const primaryOnly = LSN(math.MaxUint64)

// ReplicaStatus is what the session knows of one replica.
type ReplicaStatus struct {
	// Shard and Index name the replica: the index-th replica of Shard, in
	// the order of WithReplicas.
	Shard ShardID
	Index int
	// Healthy reports whether reads may use it.
	Healthy bool
	// ReplayLSN is how far it had replayed the primary's WAL at the last
	// successful check, 0 before the first.
	ReplayLSN LSN
	// Err is why it is down, nil when healthy.
	Err error
	// Checked is when it was last checked, zero before the first check.
	Checked time.Time
}

// replicaSet is the session's replicas and their health checker, shared by
// the views Using makes.
type replicaSet struct {
	byShard  map[ShardID]*shardReplicas
	obs      ReplicaObserver // nil: checks are not reported (observe.go)
	interval time.Duration
	timeout  time.Duration
	limit    int // WithConcurrency: how many replicas checkAll checks at once

	running atomic.Bool // started, read without the lock on every read
	mu      sync.Mutex  // guards started, closed, stop
	started bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
}

// shardReplicas are one shard's replicas and the turn among them.
type shardReplicas struct {
	list []*replica
	turn atomic.Uint64
}

// replica is one replica and what the checks learned of it.
type replica struct {
	shard ShardID
	index int
	db    bun.IDB // what reads run on: the replica's bun.IDB, with the attempt hook when it is a *bun.DB
	conn  bun.IConn

	healthy atomic.Bool
	lsn     atomic.Uint64

	mu      sync.Mutex // guards err and checked
	err     error
	checked time.Time
}

func newReplicaSet(s *Session, c replicaConfig) (*replicaSet, error) {
	rs := &replicaSet{
		byShard:  map[ShardID]*shardReplicas{},
		interval: DefaultReplicaCheckInterval,
		timeout:  DefaultReplicaCheckTimeout,
		limit:    s.cfg.concurrency,
		done:     make(chan struct{}),
	}
	rs.obs, _ = s.cfg.observer.(ReplicaObserver)
	if c.interval > 0 {
		rs.interval = c.interval
	}
	if c.timeout > 0 {
		rs.timeout = c.timeout
	}
	for id, dbs := range c.dbs {
		primary, ok := s.shards[id]
		if !ok {
			return nil, s.unknown(id, "WithReplicas")
		}
		if _, ok := primary.(*bun.DB); !ok && len(dbs) > 0 {
			return nil, fmt.Errorf("%w: WithReplicas(%s): the shard's handle is a %T; replicas need its primary "+
				"as a *bun.DB (statements on a transaction or connection stay on it)", ErrInvalidArgument, id, primary)
		}
		sr := &shardReplicas{}
		for i, db := range dbs {
			switch {
			case db == nil:
				return nil, fmt.Errorf("%w: WithReplicas(%s): replica %d is nil", ErrInvalidArgument, id, i)
			case db.Dialect() != s.dialect:
				return nil, fmt.Errorf("%w: WithReplicas(%s): replica %d uses another dialect instance; "+
					"build it with the shards' shared pgdialect.New() value", ErrInvalidArgument, id, i)
			}
			r := &replica{shard: id, index: i, db: db, conn: db}
			if bdb, ok := db.(*bun.DB); ok {
				r.db = bdb.WithQueryHook(attemptHook{})
				r.conn = bdb.DB // checks bypass the user's hooks
			}
			r.healthy.Store(true) // until a read or a check says otherwise; New does not dial
			sr.list = append(sr.list, r)
		}
		if len(sr.list) > 0 {
			rs.byShard[id] = sr
		}
	}
	if len(rs.byShard) == 0 {
		return nil, nil
	}
	return rs, nil
}

// pick returns the replica a read of shard id runs on, or nil for the
// primary: the next healthy replica in turn that has replayed what the
// context's read-your-writes tracker requires.
func (rs *replicaSet) pick(ctx context.Context, id ShardID) *replica {
	if rs == nil {
		return nil
	}
	sr := rs.byShard[id]
	if sr == nil || usePrimary(ctx) {
		return nil
	}
	rs.start()
	need := LSN(0)
	if t := trackerOf(ctx, rs); t != nil {
		need = t.need(id)
	}
	if need == primaryOnly {
		return nil
	}
	n := uint64(len(sr.list))
	first := sr.turn.Add(1)
	for k := range n {
		r := sr.list[(first+k)%n]
		if r.healthy.Load() && LSN(r.lsn.Load()) >= need {
			return r
		}
	}
	return nil
}

// start starts the health checker once, unless the session is closed.
func (rs *replicaSet) start() {
	if rs.running.Load() {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.started || rs.closed {
		return
	}
	rs.started = true
	rs.running.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	rs.stop = cancel
	go rs.run(ctx)
}

// run checks every replica at once, every interval, until ctx ends.
func (rs *replicaSet) run(ctx context.Context) {
	defer close(rs.done)
	t := time.NewTicker(rs.interval)
	defer t.Stop()
	for {
		_ = rs.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// close stops the checker, waits for it, and closes every replica that can
// be closed, returning the failures.
func (rs *replicaSet) close() []error {
	if rs == nil {
		return nil
	}
	rs.mu.Lock()
	rs.closed = true
	started := rs.started
	if started {
		rs.stop()
	}
	rs.mu.Unlock()
	if started {
		<-rs.done
	}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(rs.byShard)) {
		for _, r := range rs.byShard[id].list {
			if c, ok := r.conn.(io.Closer); ok {
				if err := c.Close(); err != nil {
					errs = append(errs, &ShardError{Shard: id, Op: "close replica " + strconv.Itoa(r.index), Err: err})
				}
			}
		}
	}
	return errs
}

// checkAll checks every replica concurrently and returns the failures,
// sorted by shard and index.
func (rs *replicaSet) checkAll(ctx context.Context) error {
	var all []*replica
	for _, sr := range rs.byShard {
		all = append(all, sr.list...)
	}
	errs, _ := fanout.Run(ctx, len(all), fanout.Policy{Limit: rs.limit}, func(ctx context.Context, i int) error {
		r := all[i]
		if err := r.check(ctx, rs.timeout, rs.obs); err != nil {
			return &ShardError{Shard: r.shard, Op: "check replica " + strconv.Itoa(r.index), Err: err}
		}
		return nil
	})
	return joinByShard(errs)
}

// check asks the replica whether it is a standby and how far it has
// replayed, and records the answer.
func (r *replica) check(ctx context.Context, timeout time.Duration, obs ReplicaObserver) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		standby bool
		replay  sql.NullString
		lag     sql.NullFloat64 // seconds; see ReplicaCheck.Lag
	)
	// The lag is 0 when the replica has replayed all it received, else the
	// age of the last transaction it replayed (the usual standby-side
	// measure; it grows while the primary is idle only if WAL is pending).
	err := r.conn.QueryRowContext(ctx, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "+
		"CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "+
		"ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END").Scan(&standby, &replay, &lag)
	if obs != nil {
		defer func() { r.report(obs, lag) }()
	}
	if err == nil && !standby {
		err = errors.New("the server is not in recovery: it is no replica (promoted?)")
	}
	var lsn LSN
	if err == nil && replay.Valid {
		lsn, err = parseLSN(replay.String)
	}
	r.mu.Lock()
	r.checked = time.Now()
	r.err = err
	r.mu.Unlock()
	if err != nil {
		r.healthy.Store(false)
		return err
	}
	// Only forward: a replica does not un-replay, and a slower check that
	// finishes last must not lower what a faster one saw.
	for {
		old := r.lsn.Load()
		if uint64(lsn) <= old || r.lsn.CompareAndSwap(old, uint64(lsn)) {
			break
		}
	}
	r.healthy.Store(true)
	return nil
}

// markDown takes the replica out of use until a check succeeds.
func (r *replica) markDown(err error) {
	r.healthy.Store(false)
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// Replicas reports the state of every replica, by shard in shard order and
// then in the order of WithReplicas; nil when the session has none.
func (s *Session) Replicas() []ReplicaStatus {
	if s.replicas == nil {
		return nil
	}
	var out []ReplicaStatus
	for _, id := range s.order {
		sr := s.replicas.byShard[id]
		if sr == nil {
			continue
		}
		for _, r := range sr.list {
			r.mu.Lock()
			st := ReplicaStatus{Shard: id, Index: r.index, Healthy: r.healthy.Load(), ReplayLSN: LSN(r.lsn.Load()),
				Err: r.err, Checked: r.checked}
			r.mu.Unlock()
			if st.Healthy {
				st.Err = nil
			}
			out = append(out, st)
		}
	}
	return out
}

// CheckReplicas health-checks every replica now, as the periodic check does,
// and returns when all have answered or timed out. It reports each replica
// found down as a *ShardError, joined and sorted by shard.
func (s *Session) CheckReplicas(ctx context.Context) error {
	if s.replicas == nil {
		return nil
	}
	return s.replicas.checkAll(ctx)
}

// reading returns fn, a read of one shard, as it runs at the session's
// place (see place.read): on a replica only outside a unit of work.
func (s *Session) reading(fn shardFunc) shardFunc { return s.at.read(fn) }

// replicaRead wraps fn, a read of one shard, so that it runs on a replica
// when one may serve it, and on the primary otherwise, or again on the
// primary when the replica fails in a way that makes that safe.
func (s *Session) replicaRead(fn shardFunc) shardFunc {
	rs := s.replicas
	if rs == nil {
		return fn
	}
	return func(ctx context.Context, i int, id ShardID, primary bun.IDB) error {
		if !s.shardHandle(id, primary) {
			return fn(ctx, i, id, primary) // a transaction: it stays on the primary
		}
		r := rs.pick(ctx, id)
		if s.cfg.observer != nil {
			s.replicaChosen(ctx, id, r)
		}
		if r == nil {
			return fn(ctx, i, id, primary)
		}
		a := &attempt{}
		err := fn(context.WithValue(ctx, attemptKey{}, a), i, id, r.db)
		if err == nil || ctx.Err() != nil {
			return err
		}
		down, retry := replicaFailure(err, a.completed.Load() > 0)
		if down {
			r.markDown(err)
		}
		if !retry {
			return err
		}
		if s.cfg.observer != nil {
			s.replicaRetry(ctx, id)
		}
		return fn(ctx, i, id, primary)
	}
}

// shardHandle reports whether db is shard id's own *bun.DB, as New got it,
// and not a transaction on it (or a shard that is itself a bun.Tx), whose
// statements must stay where the transaction is.
func (s *Session) shardHandle(id ShardID, db bun.IDB) bool {
	own, ok := s.shards[id].(*bun.DB)
	got, ok2 := db.(*bun.DB)
	return ok && ok2 && own == got
}

// replicaFailure says what a failed read on a replica means: down, the
// replica is unusable until a check says otherwise; retry, the read may run
// again on the primary. completed reports whether a statement of the read
// (the main query, before its relation queries) had already succeeded.
func replicaFailure(err error, completed bool) (down, retry bool) {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Op == "dial" {
		return true, true // refused or unreachable: nothing was sent
	}
	if code := sqlState(err); code != "" {
		switch {
		case code == "57P03", code == "53300":
			return true, true // cannot connect now, too many connections: at connection start
		case code == "57P01", code == "57P02", strings.HasPrefix(code, "08"):
			return true, !completed // shut down or connection failure
		case code == "40001":
			return false, !completed // canceled by a conflict with recovery
		}
		return false, false
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed), ne != nil:
		return true, !completed // the connection was lost
	}
	return false, false
}

// attempt counts the statements of one read that succeeded on a replica.
type attempt struct{ completed atomic.Int32 }

type attemptKey struct{}

// attemptHook is the query hook of replica bun.DBs: it counts, for the
// attempt in the context, the statements that completed.
type attemptHook struct{}

func (attemptHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (attemptHook) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	if a, ok := ctx.Value(attemptKey{}).(*attempt); ok && (e.Err == nil || errors.Is(e.Err, sql.ErrNoRows)) {
		a.completed.Add(1)
	}
}

// WithPrimary returns a context whose reads go to the shards' primaries, not
// to replicas: for a SELECT ... FOR UPDATE, or a read that must see every
// write committed anywhere before it.
func WithPrimary(ctx context.Context) context.Context {
	return context.WithValue(ctx, primaryKey{}, true)
}

type primaryKey struct{}

func usePrimary(ctx context.Context) bool {
	v, _ := ctx.Value(primaryKey{}).(bool)
	return v
}

// WithReadYourWrites returns a context in which reads see the session's
// writes made with it, or with contexts derived from it, in any goroutine.
// After each write of a shard that has replicas, the session records a WAL
// position of the shard's primary at or past the end of the write's commit:
// the write position (pg_current_wal_lsn) when synchronous_commit is on, as
// it is by default, and the insert position (pg_current_wal_insert_lsn) when
// it is off, since COMMIT then returns before its record is written. A later
// read of the shard goes to a replica only if the replica's last check saw
// it replay that far, else to the primary. If the position cannot be read,
// the shard's reads go to the primary for the rest of the context's life.
//
// With synchronous_commit off, WAL that other sessions insert after the
// write may wait in the primary's buffers until its next commit: on an idle
// primary, tracked reads go to the primary until then.
//
// The context carries a tracker, safe for concurrent use, that belongs to s
// (and its Using views). It costs one extra statement per write and shard
// while the shard has replicas, and nothing otherwise. Called on a context
// that has one, or on a session without replicas, it returns ctx.
func (s *Session) WithReadYourWrites(ctx context.Context) context.Context {
	if s.replicas == nil || trackerOf(ctx, s.replicas) != nil {
		return ctx
	}
	return context.WithValue(ctx, trackerKey{s.replicas}, &tracker{lsn: map[ShardID]LSN{}})
}

type trackerKey struct{ rs *replicaSet }

// tracker is the WAL position each shard's reads must see.
type tracker struct {
	mu  sync.Mutex
	lsn map[ShardID]LSN
}

func trackerOf(ctx context.Context, rs *replicaSet) *tracker {
	t, _ := ctx.Value(trackerKey{rs}).(*tracker)
	return t
}

func (t *tracker) need(id ShardID) LSN {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lsn[id]
}

func (t *tracker) raise(id ShardID, lsn LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if lsn > t.lsn[id] {
		t.lsn[id] = lsn
	}
}

// wrote records, for the read-your-writes tracker in ctx, that a write to
// shard id has returned (committed, outside a transaction), by reading a WAL
// position of the primary at or past the end of that commit:
//
//   - pg_current_wal_lsn, the write position, when synchronous_commit is on
//     (or local, remote_write, remote_apply): COMMIT returned after flushing
//     its record, and the WAL writer flushes what is written within
//     wal_writer_delay, so replicas can reach the position promptly;
//   - pg_current_wal_insert_lsn, the insert position, when it is off: COMMIT
//     returned with its record perhaps not yet written, so only the insert
//     position is sure to be past it. Records inserted after it (by other
//     sessions) may wait in the WAL buffers until the primary's next commit,
//     and reads go to the primary until then.
//
// The setting is read on another connection of the same pool than the
// write's, so it assumes the pool's connections share it.
func (s *Session) wrote(ctx context.Context, id ShardID, primary bun.IDB) {
	s.at.written(ctx, id, primary)
}

// replicaWrote is wrote outside a unit of work (rootPlace.written).
func (s *Session) replicaWrote(ctx context.Context, id ShardID, primary bun.IDB) {
	rs := s.replicas
	if rs == nil || rs.byShard[id] == nil || !s.shardHandle(id, primary) {
		return // a write inside a transaction is recorded when it commits
	}
	t := trackerOf(ctx, rs)
	if t == nil {
		return
	}
	conn := primary.(*bun.DB).DB // not a statement of the user's: bypass the hooks
	var mode, write, insert string
	lsn := primaryOnly
	err := conn.QueryRowContext(ctx, "SELECT current_setting('synchronous_commit'), pg_current_wal_lsn()::text, "+
		"pg_current_wal_insert_lsn()::text").Scan(&mode, &write, &insert)
	if err == nil {
		pos := write
		if mode == "off" {
			pos = insert
		}
		if l, err := parseLSN(pos); err == nil {
			lsn = l
		}
	}
	t.raise(id, lsn)
}

// joinByShard joins the non-nil errors, sorted by shard and operation.
func joinByShard(errs []error) error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	key := func(e error) string {
		if se, ok := e.(*ShardError); ok {
			return string(se.Shard) + "\x00" + se.Op
		}
		return e.Error()
	}
	slices.SortFunc(out, func(a, b error) int { return cmp.Compare(key(a), key(b)) })
	return errors.Join(out...)
}
