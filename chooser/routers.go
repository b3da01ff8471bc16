package chooser

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Routers is a router chain, Django's DATABASE_ROUTERS: routers asked in
// order, each question on its own, the first real answer winning, and a
// default when every router abstains. [NewRouters] builds it.
//
// Routers is a chooser, so a session takes it as it takes any other:
//
//   - as a [ShardChooser] it asks the [WriteRouter]s about the object, then
//     the default's ShardChooser;
//   - as an [IdentityChooser] it asks the [ReadRouter]s about a select by the
//     primary key, then the default's IdentityChooser, then [AllShards];
//   - as an [ExecuteChooser] it asks the ReadRouters about a select and the
//     WriteRouters about an UPDATE or DELETE, then the default's
//     ExecuteChooser, then AllShards;
//   - as a [Splitter] it splits IN lists through the default's Splitter, but
//     only for models no router answers for (see [Routers.SplitValues]).
//
// It also answers the yes/no questions, never abstaining itself:
// [Routers.AllowRelation] (default: both objects on the same shard, or one
// not placed yet) and [Routers.AllowMigrate] (default: allowed).
//
// A router abstains from a read or write question by answering [None] or an
// error wrapping [ErrNoOpinion]; any other error stops the chain and is
// returned, wrapped with the router's name. Unlike [First], where
// [AllShards] means "cannot narrow it down, ask on", a router's AllShards is
// final: a router answers for a model, not for a key.
//
// Routers is immutable and safe for concurrent use if its routers and
// default are.
type Routers struct {
	def     any
	members []any
	read    []ReadRouter
	write   []WriteRouter
	rel     []RelationRouter
	migrate []MigrateRouter

	defShard ShardChooser
	defIdent IdentityChooser
	defExec  ExecuteChooser
	defSplit Splitter
}

var (
	_ ShardChooser    = (*Routers)(nil)
	_ IdentityChooser = (*Routers)(nil)
	_ ExecuteChooser  = (*Routers)(nil)
	_ Splitter        = (*Routers)(nil)
	_ RelationRouter  = (*Routers)(nil)
	_ MigrateRouter   = (*Routers)(nil)
)

// NewRouters returns the chain of routers, asked in the order given, with
// def answering what they leave open. def is a chooser with any of the roles
// [ShardChooser], [IdentityChooser], [ExecuteChooser] and [Splitter] (often
// the sharding strategy, such as a [Hash]), or nil for none. Each router must
// implement at least one of [ReadRouter], [WriteRouter], [RelationRouter] and
// [MigrateRouter].
//
// NewRouters panics on a nil router, a router with none of those abilities,
// or a non-nil def with no chooser role: a programming error like a type
// mismatch.
//
//	routers := chooser.NewRouters(byTenant, auditToArchive, configOnMain)
func NewRouters(def any, routers ...any) *Routers {
	c := &Routers{def: def, members: append([]any(nil), routers...)}
	if def != nil {
		if v := reflect.ValueOf(def); v.Kind() == reflect.Pointer && v.IsNil() {
			panic(fmt.Sprintf("chooser: NewRouters: the default is a nil %T", def))
		}
		c.defShard, _ = def.(ShardChooser)
		c.defIdent, _ = def.(IdentityChooser)
		c.defExec, _ = def.(ExecuteChooser)
		c.defSplit, _ = def.(Splitter)
		if c.defShard == nil && c.defIdent == nil && c.defExec == nil && c.defSplit == nil {
			panic(fmt.Sprintf("chooser: NewRouters: the default (%T) is not a ShardChooser, IdentityChooser, ExecuteChooser or Splitter", def))
		}
	}
	for i, r := range routers {
		mustBeSet("NewRouters: router", i, r)
		abilities := 0
		if a, ok := r.(ReadRouter); ok {
			c.read = append(c.read, a)
			abilities++
		}
		if a, ok := r.(WriteRouter); ok {
			c.write = append(c.write, a)
			abilities++
		}
		if a, ok := r.(RelationRouter); ok {
			c.rel = append(c.rel, a)
			abilities++
		}
		if a, ok := r.(MigrateRouter); ok {
			c.migrate = append(c.migrate, a)
			abilities++
		}
		if abilities == 0 {
			panic(fmt.Sprintf("chooser: NewRouters: router %d (%T) is not a ReadRouter, WriteRouter, RelationRouter or MigrateRouter", i, r))
		}
	}
	return c
}

// ChooseShard returns the shard the first WriteRouter that answers names for
// obj, else the default's choice. It fails if a router names other than one
// shard, and, wrapping [ErrNoOpinion], if no router answers and the default
// is no ShardChooser.
func (c *Routers) ChooseShard(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	if len(c.write) > 0 {
		w := &Write{Table: table, Obj: obj}
		t, ok, err := c.routeWrite(ctx, w)
		switch {
		case err != nil:
			return "", err
		case ok && len(t.List()) != 1:
			return "", fmt.Errorf("chooser: %s: a write router answered %v for a %s object; an object goes to exactly one shard",
				c, t, table.TypeName)
		case ok:
			return t.List()[0], nil
		}
	}
	if c.defShard != nil {
		return c.defShard.ChooseShard(ctx, table, obj)
	}
	return "", fmt.Errorf("chooser: %s: no router places %s objects and the default is no ShardChooser: %w",
		c, table.TypeName, ErrNoOpinion)
}

// ChooseIdentity asks the ReadRouters about a select of key.Table whose
// criteria are its primary-key columns with the key's values, then the
// default's IdentityChooser; with neither it returns the parent's shard for
// a relation load (key.LoadedFrom), else [AllShards].
func (c *Routers) ChooseIdentity(ctx context.Context, key Key) (Target, error) {
	if len(c.read) > 0 {
		stmt := &Statement{Op: OpSelect, Table: key.Table, LoadedFrom: key.LoadedFrom}
		if len(key.PK) == len(key.Table.PKs) {
			stmt.Criteria = make([]Criterion, len(key.PK))
			for i, f := range key.Table.PKs {
				stmt.Criteria[i] = Criterion{Column: f.Name, Values: key.PK[i : i+1 : i+1]}
			}
		}
		if t, ok, err := c.routeRead(ctx, stmt); err != nil || ok {
			return t, err
		}
	}
	if c.defIdent != nil {
		return c.defIdent.ChooseIdentity(ctx, key)
	}
	return loadedFrom(key.LoadedFrom), nil
}

// ChooseExecute asks the ReadRouters about a select, and the WriteRouters
// about an UPDATE or DELETE; then the default's ExecuteChooser; with neither
// it returns the parent's shard for a relation load (stmt.LoadedFrom), else
// [AllShards].
func (c *Routers) ChooseExecute(ctx context.Context, stmt *Statement) (Target, error) {
	var (
		t   Target
		ok  bool
		err error
	)
	switch stmt.Op {
	case OpSelect:
		t, ok, err = c.routeRead(ctx, stmt)
	case OpUpdate, OpDelete:
		t, ok, err = c.routeWrite(ctx, &Write{Table: stmt.Table, Stmt: stmt})
	}
	if err != nil || ok {
		return t, err
	}
	if c.defExec != nil {
		return c.defExec.ChooseExecute(ctx, stmt)
	}
	return loadedFrom(stmt.LoadedFrom), nil
}

// SplitValues splits values through the default's [Splitter], for models no
// router answers for. A router's answer is about the model, not about keys,
// so splitting by the default's key would send values to shards the router
// did not choose: SplitValues first asks the ReadRouters about a select and
// the WriteRouters about an UPDATE of table that declare only this column's
// values, and returns nil, nil (no split) if any of them answers.
func (c *Routers) SplitValues(ctx context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	if c.defSplit == nil {
		return nil, nil
	}
	criteria := []Criterion{{Column: column, Values: values}}
	if len(c.read) > 0 {
		if _, ok, err := c.routeRead(ctx, &Statement{Op: OpSelect, Table: table, Criteria: criteria}); err != nil || ok {
			return nil, err
		}
	}
	if len(c.write) > 0 {
		stmt := &Statement{Op: OpUpdate, Table: table, Criteria: criteria}
		if _, ok, err := c.routeWrite(ctx, &Write{Table: table, Stmt: stmt}); err != nil || ok {
			return nil, err
		}
	}
	return c.defSplit.SplitValues(ctx, table, column, values)
}

// AllowRelation returns the first verdict other than [Abstain] a
// RelationRouter gives, else [Allow] when both objects are on the same shard
// or either has not been placed yet, and [Deny] otherwise.
func (c *Routers) AllowRelation(ctx context.Context, a, b Object) Verdict {
	for _, r := range c.rel {
		if v := r.AllowRelation(ctx, a, b); v != Abstain {
			return v
		}
	}
	return VerdictOf(a.Shard == "" || b.Shard == "" || a.Shard == b.Shard)
}

// AllowMigrate returns the first verdict other than [Abstain] a
// MigrateRouter gives for table on shard, else [Allow].
func (c *Routers) AllowMigrate(ctx context.Context, shard identity.ShardID, table *schema.Table) Verdict {
	for _, r := range c.migrate {
		if v := r.AllowMigrate(ctx, shard, table); v != Abstain {
			return v
		}
	}
	return Allow
}

// String returns "chooser.Routers(router, …; default)", using each part's
// String method when it has one.
func (c *Routers) String() string {
	parts := make([]string, len(c.members))
	for i, m := range c.members {
		parts[i] = nameOf(m)
	}
	def := "none"
	if c.def != nil {
		def = nameOf(c.def)
	}
	return "chooser.Routers(" + strings.Join(parts, ", ") + "; default " + def + ")"
}

// routeRead asks the ReadRouters in order; ok reports whether one answered.
func (c *Routers) routeRead(ctx context.Context, stmt *Statement) (Target, bool, error) {
	for _, r := range c.read {
		t, err := r.RouteRead(ctx, stmt)
		switch {
		case errors.Is(err, ErrNoOpinion):
		case err != nil:
			return Target{}, false, fmt.Errorf("chooser: router %s: %w", nameOf(r), err)
		case !t.IsNone():
			return t, true, nil
		}
	}
	return Target{}, false, nil
}

// routeWrite asks the WriteRouters in order; ok reports whether one answered.
func (c *Routers) routeWrite(ctx context.Context, w *Write) (Target, bool, error) {
	for _, r := range c.write {
		t, err := r.RouteWrite(ctx, w)
		switch {
		case errors.Is(err, ErrNoOpinion):
		case err != nil:
			return Target{}, false, fmt.Errorf("chooser: router %s: %w", nameOf(r), err)
		case !t.IsNone():
			return t, true, nil
		}
	}
	return Target{}, false, nil
}

func nameOf(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", v)
}
