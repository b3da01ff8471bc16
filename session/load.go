package session

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/loader"
)

// LoadRelation loads a relation of objects already in memory: parents is a
// *T, a *[]T or a *[]*T of a model, and relation a relation of that model
// (has-one, belongs-to, has-many or m2m; Go field names, nested with dots:
// "Reports.Location").
//
// Parents are grouped by the shard on their [Token], and each group's
// relation is read with one statement whose IN list holds the keys of all
// of the group's parents: a relation costs one statement per shard, never
// one per parent (SQLAlchemy's selectin loading sends each shard's keys to
// every shard); under [WithFolding], the statements of shards that share a
// database go as one (has-many, has-one and belongs-to; docs/folding.md),
// each row matched to the parents of its own shard. The statement runs on, in precedence order: the shard of a
// statement option ([SetShardID], [SetShardIDs]) or a Using view; the
// parent's shard when the parent was loaded by such a pinned statement
// (the pin propagates, as SQLAlchemy's set_shard_id does); the shard
// pinned in ctx; else where the ExecuteChooser sends a Statement whose
// LoadedFrom is the parents' shard, so that a chooser can send a relation
// that lives elsewhere by design (the ready-made choosers keep it on the
// parent's shard). Loaded objects record on their Token the shard they came
// from.
//
// Has-many and m2m fields are replaced by what was found; has-one and
// belongs-to fields are set to the match, or to nil. Parents without a
// shard (no Token, never loaded or written) need a pin. A failing shard
// cancels the others and is reported as a *ShardError; the parents are then
// left unchanged for that level of the path.
func (s *Session) LoadRelation(ctx context.Context, parents any, relation string, opts ...StatementOption) error {
	if err := s.loadRelation(ctx, parents, relation, opts, nil); err != nil {
		return err
	}
	return s.fireRelationLoads(ctx, nil, parents, relation)
}

func (s *Session) loadRelation(ctx context.Context, parents any, relation string, opts []StatementOption, u *UnitOfWork) error {
	mi, kind, err := s.dest(parents)
	if err != nil {
		return fmt.Errorf("session: LoadRelation: %w", err)
	}
	if kind == destTable {
		return fmt.Errorf("%w: LoadRelation: %T is a nil pointer; pass the parents", ErrInvalidArgument, parents)
	}
	objs, _ := objectsOf(reflect.ValueOf(parents).Elem(), kind) // nil elements have nothing to load
	o := options(opts)
	limit := s.cfg.concurrency
	if u != nil && u.folds() {
		limit = 1 // shards may share a transaction, one connection (foldtx.go)
	}
	lopts := []loader.Option{loader.WithRouter(loadRouter{s: s, o: &o}), loader.WithConcurrency(limit)}
	if u != nil {
		lopts = append(lopts, loader.WithTracker(unitTracker{u: u, o: &o}))
	}
	table := mi.table
	names := strings.Split(relation, ".")
	for i, name := range names {
		if len(objs) == 0 {
			return nil
		}
		loaded, err := loader.Load(ctx, loadConns{s}, table, objs, name, lopts...)
		if err != nil {
			return err
		}
		if i < len(names)-1 {
			table, objs = loaded.Table(), loaded.Objects()
		}
	}
	return nil
}

// loadConns gives the loader the session's shard handles (a unit's
// transactions on them), with the shard in the context for Bun hooks.
type loadConns struct{ s *Session }

func (c loadConns) Conn(ctx context.Context, id ShardID) (context.Context, bun.IDB, error) {
	db, err := c.s.conn(ctx, id)
	return WithShardID(ctx, id), db, err
}

// loadRouter routes relation loads by the session's rules: the statement's
// or view's pin, the parents' propagated pin, the pin in ctx, else the
// ExecuteChooser told LoadedFrom.
type loadRouter struct {
	s *Session
	o *stmtOptions
}

var (
	_ loader.ParentsRouter = loadRouter{}
	_ loader.ParentTracker = unitTracker{}
)

func (r loadRouter) Route(ctx context.Context, t *schema.Table, from ShardID, pinned bool) (loader.Route, error) {
	return r.RouteParents(ctx, t, from, pinned, nil)
}

// RouteParents routes the load of the relation of parents (Django's
// instance hint: the ExecuteChooser's Statement.Parents).
func (r loadRouter) RouteParents(ctx context.Context, t *schema.Table, from ShardID, pinned bool, parents []reflect.Value) (loader.Route, error) {
	s, o := r.s, r.o
	what := "load " + t.TypeName
	if pinned && len(o.shards) == 0 && len(s.at.pinned()) == 0 {
		rt, err := s.checked([]ShardID{from}, "option", what)
		return loader.Route{Shards: rt.Shards, Pinned: true}, err
	}
	rt, err := s.route(ctx, o, what, func() (chooser.Target, error) {
		if from == "" {
			return chooser.Target{}, fmt.Errorf("%w: the parents have no shard on their Token (not loaded or written "+
				"through the session, or their model has no Token); pin one with SetShardID", ErrInvalidArgument)
		}
		stmt := &chooser.Statement{Op: chooser.OpSelect, Table: t, LoadedFrom: from}
		if len(parents) > 0 {
			stmt.Parents = make([]any, len(parents))
			for i, p := range parents {
				stmt.Parents[i] = p.Addr().Interface()
			}
		}
		return s.executeChooser.ChooseExecute(ctx, stmt)
	})
	return loader.Route{Shards: rt.Shards, Pinned: rt.pinned(), Shared: rt.By != "chooser"}, err
}

// unitTracker is a unit of work's identity map as the loader sees it.
type unitTracker struct {
	u *UnitOfWork
	o *stmtOptions
}

// Lookup probes the identity map on the shards a belongs-to target may be
// on: the pin, else the IdentityChooser's candidates told LoadedFrom.
func (t unitTracker) Lookup(ctx context.Context, table *schema.Table, from ShardID, pk []any) (reflect.Value, bool, error) {
	return t.LookupParent(ctx, table, from, pk, reflect.Value{})
}

// LookupParent is Lookup told the parent (the IdentityChooser's Key.Parent).
func (t unitTracker) LookupParent(ctx context.Context, table *schema.Table, from ShardID, pk []any, parent reflect.Value) (reflect.Value, bool, error) {
	u := t.u
	key := chooser.Key{Table: table, PK: pk, LoadedFrom: from}
	if parent.IsValid() {
		key.Parent = parent.Addr().Interface()
	}
	r, err := u.view.route(ctx, t.o, "load "+table.TypeName, func() (chooser.Target, error) {
		return u.s.identityChooser.ChooseIdentity(ctx, key)
	})
	if err != nil {
		return reflect.Value{}, false, err
	}
	for _, id := range r.Shards {
		if e, ok := u.ids.Get(identity.NewKey(table.Type, id, pk...)); ok && e.state == statePersistent {
			return reflect.ValueOf(e.ptr), true, nil
		}
	}
	return reflect.Value{}, false, nil
}

// Adopt merges a loaded object into the identity map.
func (t unitTracker) Adopt(table *schema.Table, shard ShardID, obj reflect.Value) reflect.Value {
	mi, err := t.u.s.info(table.Type)
	if err != nil {
		return obj
	}
	return t.u.adopt(mi, obj, shard, nil)
}
