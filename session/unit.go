package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// UnitOfWork is a scoped unit of work over the session's shards, modeled on
// SQLAlchemy's Session: it tracks objects in an identity map keyed by (model,
// primary key, shard), runs every statement of a shard inside one
// transaction on that shard (begun when the unit first touches the shard),
// writes what changed with [UnitOfWork.Flush], and ends with
// [UnitOfWork.Commit] or [UnitOfWork.Rollback]. Begin one with
// [Session.Begin].
//
// Objects are tracked by pointer: Get hands out the tracked object, and
// selects into a *[]*T return it for rows already tracked (the tracked
// object wins, see identity.Map). Add schedules new objects for INSERT;
// changes to tracked objects are found by comparing them with a snapshot
// taken when they were loaded or last flushed, and only the changed columns
// are written. Objects loaded by a partial select (Column, ColumnExpr,
// ExcludeColumn) are not tracked: see [UnitOfWork.NewSelect].
//
// Only what runs through the unit is inside its transactions: its own
// methods, its builders ([UnitOfWork.NewSelect], [UnitOfWork.NewInsert],
// [UnitOfWork.NewUpdate], [UnitOfWork.NewDelete], [UnitOfWork.NewRaw]) and
// the handles of [UnitOfWork.DB]. The Session's own
// methods autocommit, each statement in its own transaction on its shard,
// and so does whatever runs on [Session.DB]'s handles: called inside
// [Session.RunInTx] they are outside the unit, and stay written when it
// rolls back.
//
// A unit begun on a [Session.Using] view keeps the view's routing: a
// statement of the unit that routes elsewhere (a [SetShardID] option naming
// another shard) fails with [ErrInvalidArgument] naming the shard and the
// statement's model or object, and nothing is sent.
//
// A UnitOfWork is not safe for concurrent use: use it from one goroutine,
// like *pgx.Conn or a database/sql Tx. (Its fan-outs use several goroutines
// internally.) The Session it came from stays safe for concurrent use, and
// many units may run at once. Misuse is caught, not silent: a method
// called while another is running in another goroutine fails with
// [ErrConcurrentUse] naming both, and poisons the unit, so that its next
// call rolls every shard back and Commit fails: a unit used by two
// goroutines at once commits nothing. (Statements run through the unit's
// view other than a select's Scan and ScanPage, such as Iter or Count, are
// not checked; they track nothing.)
//
// A unit lives on after Commit and Rollback, as SQLAlchemy's Session does:
// its next statement begins new transactions, and the identity map is kept.
// After Commit its objects are expired (unless [ExpireOnCommit](false)):
// the next Get or select that reaches one reloads its row into it (see
// [UnitOfWork.ExpireAll]). After Rollback the objects it added or inserted
// in the rolled-back transaction are expunged, and so are the objects on
// shards the transaction wrote on (their rows may differ from them); the
// others are expired, their unflushed changes discarded. A Flush or Commit
// that failed once it had sent something rolls every shard back and leaves
// the unit refusing work with [ErrRollbackPending] until Rollback is
// called, so that nothing after it commits without the writes it lost. A
// Flush refused before sending anything leaves the unit as it was.
type UnitOfWork struct {
	s    *Session // what Begin was called on (a Using view keeps its pin)
	view *Session // s with its statements routed into this unit's transactions
	cfg  unitConfig

	// txs has one slot per shard, made by Begin, so that the map is only
	// read afterwards and fan-out goroutines open different shards'
	// transactions in parallel, each under its slot's lock.
	txs map[ShardID]*shardTx

	// objs indexes the entries of tracked by pointer. It is built lazily
	// (see index): a batch of new objects is only indexed when something
	// looks an object up, so that adding and committing ten thousand new
	// objects builds no map at all.
	objs      map[any]*entry
	unindexed bool                 // some entries of tracked are not in objs
	ids       identity.Map[*entry] // stored objects, by (model, pk, shard)
	tracked   []*entry             // every tracked object, in the order it was tracked
	inserted  []*entry             // objects this unit inserted (their rows vanish on rollback)

	done    error // why the unit ended (two goroutines used it); nil while it is usable
	pending error // a failure rolled every shard back: Rollback must acknowledge it (ErrRollbackPending)

	g guard // detects two goroutines using the unit at once (guard.go)

	// depth counts the fan-outs of the unit's view in progress (nested ones
	// run on fan-out goroutines, hence atomic); noflush counts NoAutoflush
	// calls in progress. See autoflush.go.
	depth   atomic.Int32
	noflush int

	fresh map[any]bool // objects the current statement made (loadhook.go)

	// holds is set while the unit is counted in its session's open units
	// (Session.OpenUnits): from its first transaction to its end. Fan-out
	// goroutines set it, hence atomic.
	holds atomic.Bool

	fold unitFolds // which shards share a transaction (foldtx.go)
}

// shardTx is the unit's transaction on one shard.
type shardTx struct {
	mu     sync.Mutex
	tx     bun.Tx  // a database/sql transaction, or
	held   *heldTx // a transaction on a held connection (see shardtx.go)
	open   bool
	wrote  bool  // the unit wrote on the shard: Commit must commit it
	broken error // a statement failed: PostgreSQL has aborted the transaction

	grp   *txGroup // the folded transaction it shares (foldtx.go), or nil
	rider bool     // grp's transaction is the lead's: tx or held is a handle on it, never ended here
}

type entryState uint8

const (
	statePending    entryState = iota + 1 // added, not yet inserted
	statePersistent                       // loaded, or inserted by a flush
	stateDeleted                          // marked for deletion, not yet flushed
	stateDetached                         // expunged or deleted by a flush
)

// entry is one tracked object. It is kept small: a flush of ten thousand
// new objects makes ten thousand of them.
type entry struct {
	ptr   any // the *T the unit hands out
	mi    *modelInfo
	shard ShardID // "" while a pending object is not placed
	st    *stored // set once the object is stored on its shard (loaded or flushed)

	// owner is the parent whose has-one or has-many relation ownerRel
	// holds this (pending) object: it is placed on the owner's shard and
	// gets the owner's key in its foreign key. For an object held by the
	// owner's many-to-many relation ownerRel is -1: it is placed on the
	// owner's shard (where the join rows go) and holds no key of it.
	owner    *entry
	ownerRel int32 // index into owner.mi.unit(s).owned, or -1 (m2m)

	state   entryState
	placed  bool // the current flush set its Token (undone if the flush fails)
	indexed bool // in UnitOfWork.objs
	expired bool // its columns are reloaded from its row when next loaded (ExpireAll, Commit)
}

// stored is what the unit knows of a stored object: its identity-map key
// and its snapshot (nil for an object attached only to be deleted, which is
// never compared).
type stored struct {
	key  identity.Key
	snap *snapshot
}

// val returns the tracked struct (addressable).
func (e *entry) val() reflect.Value { return reflect.ValueOf(e.ptr).Elem() }

// lookup returns the entry of the object ptr (a *T), indexing first.
func (u *UnitOfWork) lookup(ptr any) (*entry, bool) {
	u.index()
	e, ok := u.objs[ptr]
	return e, ok
}

// track indexes a new entry that is not a duplicate (lookup said so).
func (u *UnitOfWork) track(e *entry) {
	u.index()
	e.indexed = true
	u.objs[e.ptr] = e
	u.tracked = append(u.tracked, e)
}

// index puts the entries added since the last index into objs. An object
// added twice keeps its first entry; the second is dropped (and cancels a
// pending Delete, as Add of a tracked object does).
func (u *UnitOfWork) index() {
	if !u.unindexed {
		return
	}
	if u.objs == nil {
		u.objs = make(map[any]*entry, len(u.tracked))
	}
	for _, e := range u.tracked {
		if e.indexed || e.state == stateDetached {
			continue
		}
		if first, ok := u.objs[e.ptr]; ok {
			mergeDup(first, e)
			continue
		}
		e.indexed = true
		u.objs[e.ptr] = e
	}
	u.unindexed = false
}

// mergeDup drops dup, a second entry of first's object made by Add.
func mergeDup(first, dup *entry) {
	dup.state = stateDetached
	if first.state == stateDeleted {
		first.state = statePersistent
	}
}

// dedupe drops the entries of objects added twice before a flush. When
// nothing was ever indexed (a unit that only added new objects) it sorts
// the objects' addresses instead of building the index, which is cheaper
// and leaves the index to be built only if something looks an object up.
func (u *UnitOfWork) dedupe() {
	if !u.unindexed {
		return
	}
	if len(u.objs) > 0 || len(u.tracked) < 64 {
		u.index()
		return
	}
	// Sort the addresses: duplicates become neighbours. When there are
	// none (the usual case) nothing more is needed; otherwise the index
	// sorts them out.
	ps := make([]uintptr, 0, len(u.tracked))
	for _, e := range u.tracked {
		if e.state != stateDetached {
			ps = append(ps, reflect.ValueOf(e.ptr).Pointer())
		}
	}
	slices.Sort(ps)
	for i := 1; i < len(ps); i++ {
		if ps[i] == ps[i-1] {
			u.index()
			return
		}
	}
}

// UnitOption configures a [UnitOfWork] at [Session.Begin].
type UnitOption func(*unitConfig)

type unitConfig struct {
	twoPhase    bool
	crossShard  bool
	pinWins     bool
	keep        bool // Commit does not expire the unit's objects
	noAutoflush bool
	txOptions   *sql.TxOptions
}

// ExpireOnCommit sets whether Commit expires the unit's objects (the
// default is true, as SQLAlchemy's expire_on_commit): an expired object
// keeps its identity and its in-memory values, and the next Get, select or
// LoadRelation of the unit that reaches its row reloads the row into it
// (Get then sends one SELECT on its shard instead of none), so that what
// other transactions committed since is seen. Changes made to an expired
// object before that are kept and flushed (see [UnitOfWork.ExpireAll]).
// With false, objects are not reloaded: Get returns them from the map with
// no statement, as they were at Commit.
func ExpireOnCommit(on bool) UnitOption { return func(c *unitConfig) { c.keep = !on } }

// TwoPhase makes Commit atomic across shards with PostgreSQL's two-phase
// commit: every shard the unit wrote on but the coordinator runs PREPARE
// TRANSACTION, the coordinator commits with the decision record in its
// transaction, and only then does each other shard run COMMIT PREPARED (see
// [UnitOfWork.Commit]). If any PREPARE fails, every shard rolls back. A
// crash between PREPARE and COMMIT PREPARED leaves prepared transactions
// that [Session.Recover] resolves from the decision record. Every shard
// needs max_prepared_transactions > 0, and its handle must be a *bun.DB (or
// bun.Conn), not a bun.Tx: COMMIT PREPARED cannot run inside a transaction.
// A unit that wrote on one shard only commits it in one phase, which is
// atomic already.
func TwoPhase() UnitOption { return func(c *unitConfig) { c.twoPhase = true } }

// AllowCrossShard lets the unit flush objects whose relations (belongs-to,
// has-one, has-many) point to objects on another shard. Without it such a
// link is an error ([ErrRelationDenied]) before anything is sent, as for
// Session.Insert: a foreign key cannot reach another shard, and relation
// loads look for related rows on the parent's shard. It waives only the
// default (chooser.SameShard): a chooser.RelationRouter in the session's
// ShardChooser that allows or denies decides the link itself, and
// chooser.Routers, which answer with that default themselves, still deny.
func AllowCrossShard() UnitOption { return func(c *unitConfig) { c.crossShard = true } }

// UnitPinWins lets a unit begun on a [Session.Using] view, or flushed under
// a [WithShardID] context, insert its new objects on the pinned shard even
// where the ShardChooser places them on another, as [PinWins] does for one
// statement. Without it such a Flush (or Commit) fails with
// [ErrPinConflict] before anything is sent.
func UnitPinWins() UnitOption { return func(c *unitConfig) { c.pinWins = true } }

// TxOptions sets the options of the transactions the unit begins on each
// shard (isolation level, read-only), as database/sql's BeginTx takes them.
func TxOptions(opts *sql.TxOptions) UnitOption {
	return func(c *unitConfig) { c.txOptions = opts }
}

// Begin starts a unit of work on the session. It sends nothing: each
// shard's transaction begins when the unit first runs a statement there,
// and that BEGIN runs under the context of that statement (it fails with
// the context's error when the context ends first). A unit begun on a
// [Session.Using] view runs its statements on the view's shards.
//
// The transactions live until Commit or Rollback, not as long as some
// context: a unit's calls may each have their own. A unit that is never
// ended keeps one connection per shard it touched for the life of the
// process; [Session.RunInTx] ends its unit always, and [Session.OpenUnits]
// counts the units that hold transactions.
func (s *Session) Begin(opts ...UnitOption) *UnitOfWork {
	u := &UnitOfWork{
		s:    s,
		txs:  make(map[ShardID]*shardTx, len(s.order)),
		objs: map[any]*entry{},
	}
	for _, opt := range opts {
		opt(&u.cfg)
	}
	for _, id := range s.order {
		u.txs[id] = &shardTx{}
	}
	v := *s
	v.at = u
	u.view = &v
	return u
}

// closeTxs forgets the unit's transactions, all ended (committed, rolled
// back or prepared): the next statement on a shard begins a new one. Why
// fresh slots and not reset ones: the COMMIT or ROLLBACK of an ended
// transaction may still be running in the background (see endTxs), and it
// holds on to its slot's transaction, never to the slot.
func (u *UnitOfWork) closeTxs() {
	for id := range u.txs {
		u.txs[id] = &shardTx{}
	}
	u.fold.mu.Lock()
	u.fold.groups = nil
	u.fold.mu.Unlock()
	if u.holds.Swap(false) {
		u.s.units.Add(-1)
	}
}

// fail rolls every open transaction back after a failure that happened
// once something was sent (see abort), and makes the unit refuse work until
// Rollback: cause is the failure.
func (u *UnitOfWork) fail(ctx context.Context, cause error) {
	_ = u.abort(ctx) // cause says why; the rollback's own errors add nothing the caller can act on
	if u.pending == nil {
		u.pending = fmt.Errorf("%w: %w", ErrRollbackPending, cause)
	}
}

// conn returns the unit's transaction on shard id, beginning it on first
// use. It is called from fan-out goroutines, one per shard.
func (u *UnitOfWork) conn(ctx context.Context, id ShardID) (bun.IDB, error) {
	if u.done != nil {
		return nil, u.done
	}
	if err := u.outside([]ShardID{id}, "its route", "a statement of the unit (or UnitOfWork.DB)"); err != nil {
		return nil, err // a safety net: routes are checked before anything is sent
	}
	if u.pending != nil {
		return nil, u.pending
	}
	st := u.txs[id]
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.open {
		return st.db(), nil
	}
	if k := u.foldKey(ctx, id); k != "" {
		if err := u.joinFold(ctx, id, st, k); err != nil {
			return nil, fmt.Errorf("begin: %w", err)
		}
	} else if err := st.begin(ctx, id, u.s.shards[id], u.cfg.txOptions, u.cfg.twoPhase); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	if !u.holds.Swap(true) {
		u.s.units.Add(1)
	}
	return st.db(), nil
}

// failed notes that a statement failed on shard id: unless the error is
// one that leaves the transaction usable (a row not found), PostgreSQL has
// aborted the transaction, or its connection is gone, so it can only be
// rolled back. Commit refuses a unit with a broken shard, because a COMMIT
// of an aborted transaction "succeeds" by rolling back.
func (u *UnitOfWork) failed(id ShardID, err error) {
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, ErrUnitDone) {
		return
	}
	st := u.txs[id]
	st.mu.Lock()
	if st.open && st.broken == nil {
		st.broken = err
	}
	g := st.grp
	st.mu.Unlock()
	if g != nil {
		u.groupBroken(g, id, err) // one transaction: every shard sharing it is aborted
	}
}

// observe notes the shards named by the *ShardError values inside err.
func (u *UnitOfWork) observe(err error) {
	if err == nil {
		return
	}
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *ShardError:
			u.failed(e.Shard, e.Err)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			if inner := e.Unwrap(); inner != nil {
				walk(inner)
			}
		}
	}
	walk(err)
}

// DB returns the unit's transaction on shard id (beginning it if needed),
// for statements the unit does not cover. The unit counts the shard as
// written, so Commit commits it. In a [TwoPhase] unit on a *bun.DB shard
// it is a connection the unit holds, with the transaction open on it: its
// BeginTx and RunInTx fail with [ErrUnsupported] (there they would end the
// unit's transaction). It fails with [ErrUnknownShard] for an id
// the session lacks. The handle is good until the unit's next Commit or
// Rollback; after that, call DB again.
func (u *UnitOfWork) DB(ctx context.Context, id ShardID) (bun.IDB, error) {
	if err := u.enter(opDB); err != nil {
		return nil, err
	}
	defer u.leave()
	if _, ok := u.txs[id]; !ok {
		return nil, u.s.unknown(id, "UnitOfWork.DB")
	}
	db, err := u.conn(ctx, id)
	if err != nil {
		return nil, &ShardError{Shard: id, Op: "begin", Err: err}
	}
	u.wrote(id)
	return db, nil
}

func (u *UnitOfWork) wrote(id ShardID) {
	st := u.txs[id]
	st.mu.Lock()
	st.wrote = true
	st.mu.Unlock()
}

// objArgs are the objects of one argument of Add, Delete, Expunge or
// Refresh, without copying them out: a *T, a []*T, a *[]*T or a *[]T
// (whose elements are tracked by address: do not grow that slice while the
// unit uses it).
type objArgs struct {
	one   reflect.Value // a *T, or invalid
	slice reflect.Value // a []*T or []T
	ptrs  bool          // slice holds pointers
}

func (a objArgs) len() int {
	if a.one.IsValid() {
		return 1
	}
	return a.slice.Len()
}

// at returns object i, as a pointer.
func (a objArgs) at(i int) reflect.Value {
	switch {
	case a.one.IsValid():
		return a.one
	case a.ptrs:
		return a.slice.Index(i)
	}
	return a.slice.Index(i).Addr()
}

// pointers analyses one argument of Add, Delete, Expunge or Refresh.
func (u *UnitOfWork) pointers(op string, arg any) (objArgs, *modelInfo, error) {
	v := reflect.ValueOf(arg)
	if arg != nil && v.Kind() == reflect.Slice {
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		v, arg = p, p.Interface()
	}
	mi, kind, err := u.s.dest(arg)
	if err != nil {
		return objArgs{}, nil, fmt.Errorf("session: %s: %w", op, err)
	}
	var out objArgs
	switch kind {
	case destStruct:
		out.one = v
	case destSlice:
		out.slice = v.Elem()
	case destSlicePtr:
		out.slice, out.ptrs = v.Elem(), true
		for i := range out.slice.Len() {
			if out.slice.Index(i).IsNil() {
				return objArgs{}, nil, fmt.Errorf("%w: %s %s: element %d of the slice is nil", ErrInvalidArgument, op, mi.table.TypeName, i)
			}
		}
	default:
		return objArgs{}, nil, fmt.Errorf("%w: %s: %T is a nil pointer; pass the objects", ErrInvalidArgument, op, arg)
	}
	if len(mi.table.PKs) == 0 {
		return objArgs{}, nil, fmt.Errorf("%w: %s: model %s has no primary key; a unit of work tracks objects by primary key",
			ErrInvalidArgument, op, mi.table.TypeName)
	}
	return out, mi, nil
}

// Add schedules objects for insertion: each argument is a *T, a []*T, a
// *[]*T or a *[]T of a model. New objects are inserted by the next flush, on
// the shard a pin (a Using view, or the flush's context) names, else the
// shard on their Token, else their owner's shard (the parent whose has-one,
// has-many or many-to-many relation holds them), else the ShardChooser's.
// Under a pin, the flush fails with [ErrPinConflict] for an object the
// ShardChooser places on another shard, unless the unit was begun with
// [UnitPinWins]. The join rows of a new object's many-to-many relations are
// inserted on its shard (see Flush). Objects the unit already tracks stay
// where they are: adding them again does nothing,
// except that it cancels a pending Delete. Add sends nothing; it fails on
// arguments that are not models with a primary key.
func (u *UnitOfWork) Add(objs ...any) error {
	if err := u.enter(opAdd); err != nil {
		return err
	}
	defer u.leave()
	for _, arg := range objs {
		ptrs, mi, err := u.pointers("Add", arg)
		if err != nil {
			return err
		}
		// One allocation for the entries of a slice, and no index yet (see
		// objs): tracking ten thousand new objects should not cost ten
		// thousand allocations and map inserts.
		n := ptrs.len()
		block := make([]entry, n)
		u.tracked = slices.Grow(u.tracked, n)
		for i := range n {
			u.addInto(ptrs.at(i), mi, &block[i])
		}
	}
	return nil
}

// add tracks p as a new object (the caller knows it is not tracked).
func (u *UnitOfWork) add(p reflect.Value, mi *modelInfo) *entry {
	e := &entry{ptr: p.Interface(), mi: mi, state: statePending}
	u.track(e)
	return e
}

// addInto tracks p as a new object in e, unindexed: if p is tracked
// already, index or dedupe drops e later.
func (u *UnitOfWork) addInto(p reflect.Value, mi *modelInfo, e *entry) {
	*e = entry{ptr: p.Interface(), mi: mi, state: statePending}
	u.tracked = append(u.tracked, e)
	u.unindexed = true
}

// Delete marks objects for deletion by the next flush (arguments as for
// Add). A tracked object is deleted on its shard. An object the unit does
// not track is deleted where its Token says, else where a pin or the
// ShardChooser says, as Session.Delete does. A pending object (added, never
// flushed) cannot be deleted: Expunge it. Delete sends nothing.
func (u *UnitOfWork) Delete(objs ...any) error {
	if err := u.enter(opDelete); err != nil {
		return err
	}
	defer u.leave()
	for _, arg := range objs {
		ptrs, mi, err := u.pointers("Delete", arg)
		if err != nil {
			return err
		}
		for i := range ptrs.len() {
			p := ptrs.at(i)
			ptr := p.Interface()
			e, ok := u.lookup(ptr)
			switch {
			case !ok:
				e = &entry{ptr: ptr, mi: mi, state: stateDeleted}
				if tok := mi.token(p.Elem()); tok != nil {
					e.shard, _ = tok.Shard()
				}
				u.track(e)
			case e.state == statePending:
				return fmt.Errorf("%w: Delete %s: the object was added and never flushed; use Expunge",
					ErrInvalidArgument, mi.table.TypeName)
			case e.state == statePersistent:
				e.state = stateDeleted
			}
		}
	}
	return nil
}

// Expunge stops tracking objects (arguments as for Add): their pending
// insert, update or delete is forgotten, and a later select returns fresh
// copies of their rows. Expunge sends nothing; it fails with
// [ErrNotTracked] for an object the unit does not track.
func (u *UnitOfWork) Expunge(objs ...any) error {
	if err := u.enter(opExpunge); err != nil {
		return err
	}
	defer u.leave()
	for _, arg := range objs {
		ptrs, mi, err := u.pointers("Expunge", arg)
		if err != nil {
			return err
		}
		for i := range ptrs.len() {
			e, ok := u.lookup(ptrs.at(i).Interface())
			if !ok {
				return fmt.Errorf("%w: Expunge %s", ErrNotTracked, mi.table.TypeName)
			}
			u.detach(e)
		}
	}
	return nil
}

// detach forgets e; flushes skip detached entries of u.tracked.
func (u *UnitOfWork) detach(e *entry) {
	if e.indexed {
		delete(u.objs, e.ptr)
		e.indexed = false
	}
	if e.st != nil {
		if cur, ok := u.ids.Get(e.st.key); ok && cur == e {
			u.ids.Delete(e.st.key)
		}
	}
	e.state = stateDetached
}

// Get loads the object with primary key pk into *dst, where dst is a **T
// (var loc *Location; uow.Get(ctx, &loc, 7)): the unit hands out the
// tracked object itself. Candidate shards are found as Session.Get finds
// them (pin, context, IdentityChooser); the identity map is probed under
// each, in order, and a hit returns the tracked object with no statement
// at all (SQLAlchemy's identity-map probe). On a miss the row is read
// inside the unit's transactions and tracked.
//
// An object the unit has marked for deletion is not found: the error
// satisfies errors.Is(err, sql.ErrNoRows), as for a key found nowhere. A
// hit on an expired object (see [UnitOfWork.ExpireAll]) reloads its row on
// its shard first, one SELECT; if the row is gone the object is expunged
// and the error satisfies errors.Is(err, sql.ErrNoRows).
func (u *UnitOfWork) Get(ctx context.Context, dst any, pk ...any) error {
	return u.get(ctx, stmtOptions{}, dst, pk)
}

// GetWith is [UnitOfWork.Get] with statement options, as
// [Session.GetWith] takes them.
func (u *UnitOfWork) GetWith(ctx context.Context, opts []StatementOption, dst any, pk ...any) error {
	o, err := getOptions(opts)
	if err != nil {
		return err
	}
	return u.get(ctx, o, dst, pk)
}

func (u *UnitOfWork) get(ctx context.Context, o stmtOptions, dst any, pk []any) error {
	if err := u.enter(opGet); err != nil {
		return err
	}
	defer u.leave()
	dv := reflect.ValueOf(dst)
	if dv.Kind() != reflect.Pointer || dv.IsNil() || dv.Elem().Kind() != reflect.Pointer || dv.Elem().Type().Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%w: UnitOfWork.Get: dst must be a **T (var loc *Location; uow.Get(ctx, &loc, 7)), "+
			"because the unit hands out its tracked object; got %T", ErrInvalidArgument, dst)
	}
	mi, err := u.s.info(dv.Elem().Type().Elem())
	if err != nil {
		return fmt.Errorf("session: Get: %w", err)
	}
	if pk, err = typedPK(mi, pk); err != nil {
		return err
	}
	t := mi.table
	r, err := u.view.route(ctx, &o, "Get "+t.TypeName, func() (chooser.Target, error) {
		return u.s.identityChooser.ChooseIdentity(ctx, chooser.Key{Table: t, PK: pk})
	})
	if err != nil {
		return err
	}
	// Probe with the key as it will be read back from the row (typedPK
	// gave each value its field's type).
	probe := reflect.New(mi.typ)
	if err := setPK(mi, probe.Elem(), pk); err != nil {
		return err
	}
	canon := pkOf(mi, probe.Elem())
	for _, id := range r.Shards {
		if e, ok := u.ids.Get(identity.NewKey(mi.typ, id, canon...)); ok {
			if e.state == stateDeleted {
				return fmt.Errorf("session: Get %s%v: marked for deletion in this unit of work: %w", t.TypeName, pk, sql.ErrNoRows)
			}
			if e.expired {
				if err := u.reload(ctx, e); err != nil {
					return err
				}
			}
			dv.Elem().Set(reflect.ValueOf(e.ptr))
			return nil
		}
	}
	id, err := u.view.getRouted(ctx, mi, probe.Elem(), probe.Interface(), pk, r)
	if err != nil {
		return err
	}
	dv.Elem().Set(u.adopt(mi, probe, id, nil))
	return u.s.fireLoads(ctx, u, dv.Elem(), mi, nil, false, id) // loadhook.go
}

// pkOf reads the primary-key values of the struct v.
func pkOf(mi *modelInfo, v reflect.Value) []any {
	out := make([]any, len(mi.table.PKs))
	for i, f := range mi.table.PKs {
		out[i] = f.Value(v).Interface()
	}
	return out
}

// shardOfLoaded returns the shard a loaded object's Token records, or ""
// for a model without Token.
func shardOfLoaded(mi *modelInfo, v reflect.Value) ShardID {
	if tok := mi.token(v); tok != nil {
		id, _ := tok.Shard()
		return id
	}
	return ""
}

// NewSelect starts a select that runs inside the unit's transactions and
// merges its rows into the identity map. Its model must be a *[]*T: rows
// already tracked come back as the tracked objects (with their unflushed
// changes: the tracked object wins), others are tracked from now on, and so
// are the objects loaded through Relation that are held by pointer. A
// relation field the tracked object has not loaded (a nil pointer or a nil
// slice) is filled from the row.
//
// Scan and ScanPage track their rows; Iter, ScanByShard, aggregates and
// Scan into separate destinations run in the unit's transactions but track
// nothing.
//
// A partial select, one with Column, ColumnExpr or ExcludeColumn on the
// statement or in the apply function of a Relation, may not load every
// column, so its objects are not tracked: a row the unit tracks comes back
// as the tracked object (complete, with its unflushed changes; relations
// it has not loaded are set, untracked, from the row), and any other row as
// a new, untracked object holding only the columns selected, whose
// relations are not tracked either. Changes to an
// untracked object are not flushed, and a later Get or full select of its
// row reads the row from its shard and tracks that object. (A row whose
// primary key is zero, perhaps because the select left it out, is always
// returned untracked.) A statement on a model without Token can only track rows it
// loads from a single shard.
func (u *UnitOfWork) NewSelect() *SelectQuery { return u.view.NewSelect() }

// LoadRelation loads a relation of objects already in memory, as
// Session.LoadRelation does, inside the unit's transactions; the loaded
// objects held by pointer are merged into the identity map, and belongs-to
// targets the unit already tracks are taken from it with no statement.
func (u *UnitOfWork) LoadRelation(ctx context.Context, parents any, relation string, opts ...StatementOption) error {
	if err := u.enter(opLoadRelation); err != nil {
		return err
	}
	defer u.leave()
	u.fresh = nil
	err := u.view.loadRelation(ctx, parents, relation, opts, u)
	u.observe(err)
	if err == nil {
		u.resnapLoaded(parents, relation)
		err = u.view.fireRelationLoads(ctx, u, parents, relation)
	}
	return err
}

// Refresh reloads tracked objects (arguments as for Add) from their own
// shards, inside the unit's transactions, discarding their unflushed
// changes; a later flush compares them with what was reloaded. No chooser
// is asked (SQLAlchemy's refresh goes to the identity token too). A row that
// is gone gives an error satisfying errors.Is(err, sql.ErrNoRows); an object
// not tracked, or pending, gives [ErrNotTracked].
func (u *UnitOfWork) Refresh(ctx context.Context, objs ...any) error {
	if err := u.enter(opRefresh); err != nil {
		return err
	}
	defer u.leave()
	for _, arg := range objs {
		ptrs, mi, err := u.pointers("Refresh", arg)
		if err != nil {
			return err
		}
		for i := range ptrs.len() {
			e, ok := u.lookup(ptrs.at(i).Interface())
			if !ok || e.state == statePending || e.shard == "" {
				return fmt.Errorf("%w: Refresh %s: the unit does not track it as stored on a shard (flush it first)", ErrNotTracked, mi.table.TypeName)
			}
			u.noflush++ // Refresh discards the object's changes: flushing them first would write them
			err := u.view.fanOut(ctx, []ShardID{e.shard}, "refresh", func(ctx context.Context, _ int, _ ShardID, db bun.IDB) error {
				return db.NewSelect().Model(e.ptr).WherePK().Scan(ctx)
			})
			u.noflush--
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("session: Refresh %s: the row is gone from shard %s: %w", mi.table.TypeName, e.shard, sql.ErrNoRows)
			}
			if err != nil {
				return err
			}
			if e.st != nil {
				// The reload leaves many-to-many relations as they are, so
				// their changes stay changes.
				old := e.st.snap
				e.st.snap = u.snapshot(e.mi, e.val())
				if old != nil {
					e.st.snap.links = old.links
				}
			}
		}
	}
	return nil
}
