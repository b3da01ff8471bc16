package session

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/fanout"
)

// Folded transactions: under WithFolding, a unit's logical shards that fold
// together (the same server, database and connection settings; see
// fold.go) share one transaction on that database. The first of them the
// unit touches begins it, on its own *bun.DB (its slot, the group's lead,
// holds the transaction); each other one (a rider) runs its statements on
// the same database/sql transaction or held connection, through a handle
// bound to its own *bun.DB, so that its statements are rendered with its
// named arguments (its table prefix) and its Bun query hooks run. Commit
// then ends one transaction per group: one COMMIT, or one PREPARE
// TRANSACTION and one COMMIT PREPARED. See docs/folding.md.
//
// One connection cannot run two statements at once, so a unit's fan-outs
// run the shards of one group one after another (the groups in parallel),
// LoadRelation runs its loads one at a time, and Iter, which keeps one
// result open per shard, refuses a route with two shards of one group.

// txGroup is the unit's transaction shared by the shards of one fold group.
type txGroup struct {
	mu      sync.Mutex
	open    bool
	lead    ShardID   // the shard whose slot holds the transaction
	tx      bun.Tx    // the lead's database/sql transaction, or
	held    *heldTx   // its held connection
	members []ShardID // every shard bound to it, the lead first
}

// unitFolds holds a unit's fold decisions: keys[id] is the fold key shard
// id's transaction joins for the unit's life ("" for a transaction of its
// own), decided once so that the fan-outs' grouping and conn agree.
type unitFolds struct {
	mu     sync.Mutex
	keys   map[ShardID]string
	groups map[string]*txGroup
}

// rebindable reports whether handles can be bound to another *bun.DB:
// bun.Tx and bun.Conn keep it in an unexported field named db. When Bun
// changes that, units do not fold (every shard has its own transaction).
var rebindable = func() bool {
	dbType := reflect.TypeFor[*bun.DB]()
	for _, t := range []reflect.Type{reflect.TypeFor[bun.Tx](), reflect.TypeFor[bun.Conn]()} {
		f, ok := t.FieldByName("db")
		if !ok || f.Type != dbType {
			return false
		}
	}
	return true
}()

// rebind returns a copy of *v (a bun.Tx or bun.Conn) whose statements are
// built and hooked on db; they run on the same transaction or connection.
func rebind[T bun.Tx | bun.Conn](v T, db *bun.DB) T {
	f := reflect.ValueOf(&v).Elem().FieldByName("db")
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(db))
	return v
}

// folds reports whether the unit's transactions fold.
func (u *UnitOfWork) folds() bool { return u.s.cfg.folds != nil && rebindable }

// foldKey returns the fold key shard id's transaction joins ("" for none),
// deciding it on first use: from the session's fold cache, else by asking
// the shard (a shard that cannot be asked has a transaction of its own for
// the unit's life).
func (u *UnitOfWork) foldKey(ctx context.Context, id ShardID) string {
	if !u.folds() || !u.s.foldable(id) {
		return ""
	}
	u.fold.mu.Lock()
	k, ok := u.fold.keys[id]
	u.fold.mu.Unlock()
	if ok {
		return k
	}
	k = u.s.foldKeys(ctx, []ShardID{id})[0]
	u.fold.mu.Lock()
	defer u.fold.mu.Unlock()
	if u.fold.keys == nil {
		u.fold.keys = map[ShardID]string{}
	}
	if old, ok := u.fold.keys[id]; ok {
		return old
	}
	u.fold.keys[id] = k
	return k
}

// foldKeys returns each shard's fold key from the session's cache, asking
// those not in it ("" for a shard that cannot be asked).
func (s *Session) foldKeys(ctx context.Context, ids []ShardID) []string {
	fc := s.cfg.folds
	keys := make([]string, len(ids))
	var ask []int
	fc.mu.Lock()
	for i, id := range ids {
		if k, ok := fc.keys[id]; ok {
			keys[i] = k
		} else {
			ask = append(ask, i)
		}
	}
	fc.mu.Unlock()
	if len(ask) == 0 {
		return keys
	}
	got := make([]string, len(ask))
	_, _ = fanout.Run(ctx, len(ask), fanout.Policy{Limit: s.cfg.concurrency}, func(ctx context.Context, j int) error {
		var cols [9]string
		dest := make([]any, len(cols))
		for c := range cols {
			dest[c] = &cols[c]
		}
		if err := s.shards[ids[ask[j]]].QueryRowContext(ctx, foldProbe).Scan(dest...); err != nil {
			return err
		}
		got[j] = strings.Join(cols[:], "\x00")
		return nil
	})
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for j, i := range ask {
		if got[j] != "" {
			fc.keys[ids[i]] = got[j]
			keys[i] = got[j]
		}
	}
	return keys
}

// foldTasks returns the unit's fan-out tasks for ids, as lists of indices
// into ids: the shards of one transaction group together (run one after
// another), every other shard alone. It returns nil when no two shards of
// ids share a transaction.
func (u *UnitOfWork) foldTasks(ctx context.Context, ids []ShardID) [][]int {
	if !u.folds() || len(ids) < 2 {
		return nil
	}
	var undecided []ShardID
	u.fold.mu.Lock()
	for _, id := range ids {
		if _, ok := u.fold.keys[id]; !ok && u.s.foldable(id) {
			undecided = append(undecided, id)
		}
	}
	u.fold.mu.Unlock()
	if len(undecided) > 0 {
		_ = u.s.foldKeys(ctx, undecided) // fills the cache foldKey reads
	}
	return groupByKey(len(ids), func(i int) string { return u.foldKey(ctx, ids[i]) })
}

// joinFold gives st, shard id's slot (locked, not open), the unit's
// transaction of key k: it begins it when the group has none open (id
// leads), else binds a handle of id's *bun.DB to it (id rides).
func (u *UnitOfWork) joinFold(ctx context.Context, id ShardID, st *shardTx, k string) error {
	u.fold.mu.Lock()
	if u.fold.groups == nil {
		u.fold.groups = map[string]*txGroup{}
	}
	g := u.fold.groups[k]
	if g == nil {
		g = &txGroup{}
		u.fold.groups[k] = g
	}
	u.fold.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		if err := st.begin(ctx, id, u.s.shards[id], u.cfg.txOptions, u.cfg.twoPhase); err != nil {
			return err
		}
		g.open, g.lead, g.tx, g.held, g.members = true, id, st.tx, st.held, []ShardID{id}
		st.grp = g
		return nil
	}
	db := u.s.shards[id].(*bun.DB) // foldable
	if g.held != nil {
		st.held = &heldTx{Conn: rebind(g.held.Conn, db), id: id}
	} else {
		st.tx = rebind(g.tx, db)
	}
	st.open, st.grp, st.rider = true, g, true
	g.members = append(g.members, id)
	return nil
}

// groupBroken marks every shard sharing shard id's transaction broken by
// err: PostgreSQL aborted their one transaction.
func (u *UnitOfWork) groupBroken(g *txGroup, id ShardID, err error) {
	err = fmt.Errorf("a statement on shard %s, which shares its transaction (WithFolding), failed: %w", id, err)
	g.mu.Lock()
	members := slices.Clone(g.members)
	g.mu.Unlock()
	for _, m := range members {
		st := u.txs[m]
		st.mu.Lock()
		if m != id && st.open && st.grp == g && st.broken == nil {
			st.broken = err
		}
		st.mu.Unlock()
	}
}

// commitLeads maps the shards a Commit ends to the transactions that end
// them: leads are the writers whose slot holds a transaction (a shard
// alone, or a group's lead), in shard order, a group that only riders
// wrote on included through its lead; of[lead] are the writers its
// transaction commits. readers lose the leads of groups that were written
// on (their transaction commits). Without folded groups, leads is writers.
func (u *UnitOfWork) commitLeads(writers, readers []ShardID) (leads, rest []ShardID, of map[ShardID][]ShardID) {
	of = map[ShardID][]ShardID{}
	for _, id := range writers {
		lead := id
		if g := u.txs[id].grp; g != nil {
			lead = g.lead
		}
		if _, ok := of[lead]; !ok {
			leads = append(leads, lead)
		}
		of[lead] = append(of[lead], id)
	}
	rest = slices.DeleteFunc(slices.Clone(readers), func(id ShardID) bool {
		_, ok := of[id]
		return ok
	})
	order := func(a, b ShardID) int { return slices.Index(u.s.order, a) - slices.Index(u.s.order, b) }
	slices.SortFunc(leads, order)
	return leads, rest, of
}

// expand replaces each lead in ids by the writers its transaction ended,
// in shard order.
func (u *UnitOfWork) expand(ids []ShardID, of map[ShardID][]ShardID) []ShardID {
	if ids == nil {
		return nil
	}
	out := []ShardID{}
	for _, id := range ids {
		if ws, ok := of[id]; ok {
			out = append(out, ws...)
		} else {
			out = append(out, id)
		}
	}
	order := func(a, b ShardID) int { return slices.Index(u.s.order, a) - slices.Index(u.s.order, b) }
	slices.SortFunc(out, order)
	return slices.Compact(out)
}

// commitFolded runs commitOnePhase or commitTwoPhase (end) on the leads of
// the writers, and reports the outcome by logical shard: a *CommitError's
// lists name the writers each lead's transaction ended, and each writer a
// committed transaction covers is marked written (read-your-writes).
func (u *UnitOfWork) commitFolded(ctx context.Context, leads []ShardID, of map[ShardID][]ShardID,
	end func(context.Context, []ShardID) error,
) error {
	err := end(ctx, leads)
	for _, ws := range of {
		for _, id := range ws {
			if st := u.txs[id]; st.rider {
				st.open = false // its transaction, the lead's, is ended
			}
		}
	}
	var ce *CommitError
	if errors.As(err, &ce) {
		ce.Committed = u.expand(ce.Committed, of)
		ce.Failed = u.expand(ce.Failed, of)
		ce.Pending = u.expand(ce.Pending, of)
		u.forgetInserts(ce.Failed)
	}
	var committed []ShardID
	switch {
	case err == nil:
		committed = u.expand(leads, of)
	case ce != nil:
		committed = ce.Committed
	}
	for _, id := range committed {
		if u.txs[id].rider {
			u.s.wrote(ctx, id, u.s.shards[id])
		}
	}
	return err
}

// streamable refuses an Iter inside a unit whose route has two shards
// sharing one transaction: a connection keeps one result open at a time.
func (u *UnitOfWork) streamable(ctx context.Context, ids []ShardID) error {
	tasks := u.foldTasks(ctx, ids)
	for _, t := range tasks {
		if len(t) > 1 {
			names := make([]string, len(t))
			for j, i := range t {
				names[j] = string(ids[i])
			}
			return fmt.Errorf("%w: Iter inside a unit of work with WithFolding: shards %s share one transaction, "+
				"which cannot stream two results at once; use a select (Scan) or Iter outside the unit",
				ErrUnsupported, strings.Join(names, ", "))
		}
	}
	return nil
}

// runTasks runs fn on the shards of ids grouped as tasks (see foldTasks):
// the tasks in parallel, the shards of one task one after another, each as
// run does. With failFast, the first failure stops the rest (a task's
// later shards are not run) and errs holds it at first.
func (s *Session) runTasks(ctx context.Context, ids []ShardID, tasks [][]int, failFast bool, fn shardFunc) (errs []error, first int) {
	errs = make([]error, len(ids))
	terrs, tfirst := fanout.Run(ctx, len(tasks), fanout.Policy{Limit: s.cfg.concurrency, FailFast: failFast, Wait: s.at.waits()},
		func(ctx context.Context, t int) error {
			var all []error
			for _, i := range tasks[t] {
				if err := ctx.Err(); err != nil && failFast {
					return err
				}
				if err := s.run(ctx, i, ids[i], fn); err != nil {
					errs[i] = err
					if failFast {
						return &taskErr{i: i, err: err}
					}
					all = append(all, err)
				}
			}
			return errors.Join(all...)
		})
	first = -1
	if tfirst >= 0 {
		var te *taskErr
		if errors.As(terrs[tfirst], &te) {
			first = te.i
		} else {
			first = tasks[tfirst][0] // not started: ctx ended
			if errs[first] == nil {
				errs[first] = terrs[tfirst]
			}
		}
	}
	return errs, first
}

// taskErr is the failure of the shard ids[i] in a task of runTasks.
type taskErr struct {
	i   int
	err error
}

func (e *taskErr) Error() string { return e.err.Error() }
func (e *taskErr) Unwrap() error { return e.err }

// unitFoldTasks is foldTasks for the session's unit, if any.
func (s *Session) unitFoldTasks(ctx context.Context, ids []ShardID) [][]int {
	if u := s.at.unitOf(); u != nil {
		return u.foldTasks(ctx, ids)
	}
	return nil
}

// commitFoldedUnit is commit's end for a unit under WithFolding: each
// transaction (a shard's own, or a folded group's) commits once, through
// its lead; see commitLeads.
func (u *UnitOfWork) commitFoldedUnit(ctx context.Context, writers, readers []ShardID) error {
	leads, readers, of := u.commitLeads(writers, readers)
	u.release(readers)
	if !u.cfg.twoPhase || len(leads) < 2 {
		return u.commitFolded(ctx, leads, of, u.commitOnePhase)
	}
	leads, of = u.coordinatorLeads(leads, of)
	if u.s.cfg.observer == nil {
		return u.commitFolded(ctx, leads, of, u.commitTwoPhase)
	}
	ctx, end := u.s.observeTwoPhase(ctx, writers)
	err := u.commitFolded(ctx, leads, of, u.commitTwoPhase)
	end(err)
	return err
}

// coordinatorLeads makes the coordinator its group's lead for a two-phase
// Commit when it shares the transaction of a group the unit wrote on but
// another shard of the group began it: the two slots trade places, so that
// the group's transaction is the coordinator's, holds the decision and
// commits in one phase, instead of being prepared beside a transaction
// begun for the decision alone. (The slot that began it is a rider's
// afterwards; Commit's closeTxs makes fresh slots either way.)
func (u *UnitOfWork) coordinatorLeads(leads []ShardID, of map[ShardID][]ShardID) ([]ShardID, map[ShardID][]ShardID) {
	coord := u.s.cfg.coordinator
	st, ok := u.txs[coord]
	if !ok || !st.rider || !st.open {
		return leads, of
	}
	lead := st.grp.lead
	ws, ok := of[lead]
	if !ok {
		return leads, of
	}
	u.txs[coord], u.txs[lead] = u.txs[lead], st
	delete(of, lead)
	of[coord] = ws
	leads[slices.Index(leads, lead)] = coord
	slices.SortFunc(leads, func(a, b ShardID) int { return slices.Index(u.s.order, a) - slices.Index(u.s.order, b) })
	return leads, of
}
