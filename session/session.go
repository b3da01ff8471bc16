package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// Session routes Bun statements over several PostgreSQL shards. It holds one
// bun.IDB per shard (a *bun.DB, or a bun.Tx in tests) and the three choosers.
//
// A Session is safe for concurrent use by multiple goroutines, like *bun.DB,
// and immutable after [New]: it keeps no per-object state. Objects remember
// their shard through an embedded [Token].
type Session struct {
	shards  map[ShardID]bun.IDB
	order   []ShardID
	dialect schema.Dialect
	// placements holds, per shard, the interned unpinned Placement that
	// Token.SetShard would look up (a sync.Map load per object): placing
	// objects stamps them from here (setShard).
	placements map[ShardID]*identity.Placement
	// relRouter is the ShardChooser as a chooser.RelationRouter, nil when
	// it is none: mayRelate's first question, answered once.
	relRouter chooser.RelationRouter

	shardChooser    chooser.ShardChooser
	identityChooser chooser.IdentityChooser
	executeChooser  chooser.ExecuteChooser

	cfg config
	at  place // where statements run: the shards, a Using view's, or a unit's transactions

	replicas *replicaSet // nil without WithReplicas; shared by views

	models *sync.Map // reflect.Type -> *modelInfo, shared by views

	decisions *decisions    // the two-phase decision table, shared by views
	units     *atomic.Int64 // units of work holding transactions (OpenUnits), shared by views
}

// New returns a Session over shards. The shard map must be non-empty, every
// choosers non-nil, and every shard must use one shared PostgreSQL dialect
// instance (build each *bun.DB with the same pgdialect.New() value): Bun keeps
// its table metadata on the dialect, and separate instances make
// relation-bearing models fail. New does not dial; use [Session.Ping].
//
// The session's shard order (used for [chooser.AllShards] and for
// concatenated results) is the shard ids sorted, or as [WithShardOrder]
// sets it.
func New(shards map[ShardID]bun.IDB, sc chooser.ShardChooser, ic chooser.IdentityChooser,
	ec chooser.ExecuteChooser, opts ...Option,
) (*Session, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("%w: New: the shard map is empty", ErrInvalidArgument)
	}
	switch {
	case sc == nil:
		return nil, fmt.Errorf("%w: New: the ShardChooser is nil", ErrInvalidArgument)
	case ic == nil:
		return nil, fmt.Errorf("%w: New: the IdentityChooser is nil", ErrInvalidArgument)
	case ec == nil:
		return nil, fmt.Errorf("%w: New: the ExecuteChooser is nil", ErrInvalidArgument)
	}
	s := &Session{
		shards:          make(map[ShardID]bun.IDB, len(shards)),
		placements:      make(map[ShardID]*identity.Placement, len(shards)),
		shardChooser:    sc,
		identityChooser: ic,
		executeChooser:  ec,
		models:          new(sync.Map),
		decisions:       new(decisions),
		units:           new(atomic.Int64),
	}
	s.at = rootPlace{s}
	for id, db := range shards {
		if id == "" {
			return nil, fmt.Errorf("%w: New: a shard has an empty id", ErrInvalidArgument)
		}
		if db == nil {
			return nil, fmt.Errorf("%w: New: shard %s has a nil database", ErrInvalidArgument, id)
		}
		s.shards[id] = db
		s.order = append(s.order, id)
		s.placements[id] = identity.Place(id, false)
	}
	s.relRouter, _ = sc.(chooser.RelationRouter)
	slices.Sort(s.order)
	first := s.order[0]
	s.dialect = s.shards[first].Dialect()
	for _, id := range s.order[1:] {
		if d := s.shards[id].Dialect(); d != s.dialect {
			return nil, fmt.Errorf("%w: New: shards %s and %s use different dialect instances; "+
				"build every shard's bun.DB with one shared pgdialect.New() value", ErrInvalidArgument, first, id)
		}
	}
	if s.dialect.Name() != dialect.PG {
		return nil, fmt.Errorf("%w: New: shard %s uses the %s dialect; bunshard supports PostgreSQL (pgdialect)",
			ErrInvalidArgument, first, s.dialect.Name())
	}
	for _, opt := range opts {
		opt(&s.cfg)
	}
	if s.cfg.fold {
		s.cfg.folds = &foldCache{keys: map[ShardID]string{}}
	}
	var err error
	if s.replicas, err = newReplicaSet(s, s.cfg.replicas); err != nil {
		return nil, err
	}
	if s.cfg.order != nil {
		sorted := slices.Sorted(slices.Values(s.cfg.order))
		if !slices.Equal(sorted, s.order) {
			return nil, fmt.Errorf("%w: WithShardOrder(%v) must name each of the shards %v exactly once",
				ErrInvalidArgument, s.cfg.order, s.order)
		}
		s.order = s.cfg.order
	}
	if s.cfg.coordinator == "" {
		s.cfg.coordinator = s.order[0]
	} else if _, ok := s.shards[s.cfg.coordinator]; !ok {
		return nil, fmt.Errorf("%w: WithCoordinator(%q) names no shard of %v", ErrInvalidArgument, s.cfg.coordinator, s.order)
	}
	return s, nil
}

// Shards returns the session's shard ids in shard order.
func (s *Session) Shards() []ShardID { return slices.Clone(s.order) }

// DB returns the bun.IDB of shard id, for statements the session does not
// cover. It fails with [ErrUnknownShard] for an id the session lacks.
//
// Statements on it autocommit, like the Session's own methods: inside
// [Session.RunInTx] or a [UnitOfWork] they are outside the unit, and stay
// written when it rolls back. Use [UnitOfWork.DB] for the unit's
// transaction on a shard.
func (s *Session) DB(id ShardID) (bun.IDB, error) {
	db, ok := s.shards[id]
	if !ok {
		return nil, s.unknown(id, "DB")
	}
	return db, nil
}

// Table returns Bun's metadata for model (a pointer to a model struct, or
// a pointer to a slice of them), from the shared dialect. It panics as Bun
// does for a type that is not a model.
func (s *Session) Table(model any) *schema.Table {
	mi, err := s.modelOf(model)
	if err != nil {
		panic(err)
	}
	return mi.table
}

// RegisterModel registers models (m2m join models first, as Bun requires)
// on the shared dialect, so every shard knows them.
func (s *Session) RegisterModel(models ...any) {
	s.dialect.Tables().Register(models...)
}

// Using returns a view of the session whose statements all run on the given
// shards (Django's using(), Piccolo's node=), as if each carried
// SetShardIDs(ids...): selects, counts, Get, writes, statement-form updates
// and deletes, and the table DDL of [Session.CreateTables],
// [Session.DropTables], [Session.Tables] and [Session.Placement]. A
// statement option still overrides it; it overrides a shard in the
// context. The view shares everything with s and is as safe for concurrent
// use.
//
// A view never means "every shard": on Using() with no ids every statement
// fails with [ErrInvalidArgument] before anything is sent; an unknown id
// fails with [ErrUnknownShard] when a statement runs.
func (s *Session) Using(ids ...ShardID) *Session {
	v := *s
	v.at = usingPlace{place: s.at, ids: append([]ShardID{}, ids...)} // non-nil even when empty: a view of nothing
	return &v
}

// Ping checks every shard. It reports every failing shard, sorted by id, each
// as a *ShardError.
func (s *Session) Ping(ctx context.Context) error {
	return s.each(ctx, s.order, "ping", func(ctx context.Context, _ int, _ ShardID, db bun.IDB) error {
		if p, ok := db.(interface{ PingContext(context.Context) error }); ok {
			return p.PingContext(ctx)
		}
		_, err := db.ExecContext(ctx, "SELECT 1")
		return err
	})
}

// Close stops the replica health checks (waiting for a check under way),
// closes every replica and shard database that can be closed (a *bun.DB can;
// a bun.Tx cannot) and reports every failure, replicas first, each sorted by
// shard.
func (s *Session) Close() error {
	errs := s.replicas.close()
	for _, id := range s.order {
		if c, ok := s.shards[id].(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, &ShardError{Shard: id, Op: "close", Err: err})
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Session) unknown(id ShardID, where string) error {
	return fmt.Errorf("%w %q in %s (the session has %v)", ErrUnknownShard, id, where, s.order)
}
