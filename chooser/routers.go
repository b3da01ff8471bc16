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
// Routers is a [Chain] inside (one chain primitive for both): its routers
// are members whose every answer is final, then the default.
//
// Routers is immutable and safe for concurrent use if its routers and
// default are.
type Routers struct {
	// chain is the routers' chain as a [Chain]: each router adapted as a
	// final member (routerMember), then the default, then [All] for the
	// reads a default without those roles leaves open.
	chain   *Chain
	def     any
	members []any
	routers []routerMember // the routers, for SplitValues
	rel     []RelationRouter
	migrate []MigrateRouter

	defShard ShardChooser
	defSplit Splitter
}

var (
	_ ShardChooser    = (*Routers)(nil)
	_ IdentityChooser = (*Routers)(nil)
	_ ExecuteChooser  = (*Routers)(nil)
	_ Splitter        = (*Routers)(nil)
	_ RelationRouter  = (*Routers)(nil)
	_ MigrateRouter   = (*Routers)(nil)
	_ WriteRouter     = (*Routers)(nil)
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
	c := &Routers{def: def, members: append([]any(nil), routers...), chain: &Chain{}}
	for i, r := range routers {
		mustBeSet("NewRouters: router", i, r)
		m := routerMember{name: nameOf(r)}
		m.read, _ = r.(ReadRouter)
		m.write, _ = r.(WriteRouter)
		abilities := 0
		if m.read != nil || m.write != nil {
			c.routers = append(c.routers, m)
			c.chain.add(m, true)
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
	var defIdent, defExec bool
	if def != nil {
		if v := reflect.ValueOf(def); v.Kind() == reflect.Pointer && v.IsNil() {
			panic(fmt.Sprintf("chooser: NewRouters: the default is a nil %T", def))
		}
		c.defShard, _ = def.(ShardChooser)
		c.defSplit, _ = def.(Splitter)
		_, defIdent = def.(IdentityChooser)
		_, defExec = def.(ExecuteChooser)
		if c.chain.add(def, false) == 0 {
			panic(fmt.Sprintf("chooser: NewRouters: the default (%T) is not a ShardChooser, IdentityChooser, ExecuteChooser or Splitter", def))
		}
	}
	// With no default for reads, the parent's shard for a relation load,
	// else every shard: what All answers.
	if !defIdent {
		c.chain.ident = append(c.chain.ident, member[IdentityChooser]{All, false})
	}
	if !defExec {
		c.chain.exec = append(c.chain.exec, member[ExecuteChooser]{All, false})
	}
	c.chain.members = append([]any(nil), routers...)
	if def != nil {
		c.chain.members = append(c.chain.members, def)
	}
	return c
}

// routerMember is a router asked as a [Chain] member: a [ReadRouter]
// answers selects and Gets, a [WriteRouter] objects and statement-form
// UPDATE and DELETE. Abstaining ([None], [ErrNoOpinion]) passes to the next
// member; any other error is wrapped with the router's name.
type routerMember struct {
	name  string
	read  ReadRouter
	write WriteRouter
}

func (m routerMember) wrap(t Target, err error) (Target, error) {
	switch {
	case errors.Is(err, ErrNoOpinion):
		return None(), nil
	case err != nil:
		return Target{}, fmt.Errorf("chooser: router %s: %w", m.name, err)
	}
	return t, nil
}

// refused wraps a WriteRouter's answer: abstaining passes, any other error
// is the router refusing the write, wrapped with [ErrRefused] and named.
func (m routerMember) refused(w *Write, t Target, err error) (Target, error) {
	switch {
	case errors.Is(err, ErrNoOpinion):
		return None(), nil
	case err != nil:
		what := "a " + w.Table.TypeName + " object"
		if w.Stmt != nil {
			what = "a statement-form " + strings.ToUpper(w.Stmt.Op.String()) + " of " + w.Table.TypeName
		}
		if w.Shard != "" {
			what += " on shard " + string(w.Shard)
		}
		return Target{}, fmt.Errorf("%w: router %s refuses %s: %w", ErrRefused, m.name, what, err)
	}
	return t, nil
}

// routeWrite asks the WriteRouter about w.
func (m routerMember) routeWrite(ctx context.Context, w *Write) (Target, error) {
	if m.write == nil {
		return None(), nil
	}
	t, err := m.write.RouteWrite(ctx, w)
	return m.refused(w, t, err)
}

// ChooseShard asks the WriteRouter about obj; an answer must name one shard.
// Under a pin ([WithPin]) the router is told the pinned shard (Write.Shard).
func (m routerMember) ChooseShard(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	w := &Write{Table: table, Obj: obj}
	w.Shard, _ = PinOf(ctx)
	t, err := m.routeWrite(ctx, w)
	switch {
	case err != nil || t.IsNone():
		return "", err
	case len(t.List()) != 1:
		return "", fmt.Errorf("chooser: router %s answered %v for a %s object; an object goes to exactly one shard",
			m.name, t, table.TypeName)
	}
	return t.List()[0], nil
}

// ChooseIdentity asks the ReadRouter about a select of key.Table whose
// criteria are its primary-key columns with the key's values.
func (m routerMember) ChooseIdentity(ctx context.Context, key Key) (Target, error) {
	if m.read == nil {
		return None(), nil
	}
	stmt := &Statement{Op: OpSelect, Table: key.Table, LoadedFrom: key.LoadedFrom}
	if key.Parent != nil {
		stmt.Parents = []any{key.Parent}
	}
	if len(key.PK) == len(key.Table.PKs) {
		stmt.Criteria = make([]Criterion, len(key.PK))
		for i, f := range key.Table.PKs {
			stmt.Criteria[i] = Criterion{Column: f.Name, Values: key.PK[i : i+1 : i+1]}
		}
	}
	return m.wrap(m.read.RouteRead(ctx, stmt))
}

// ChooseExecute asks the ReadRouter about a select, the WriteRouter about
// an UPDATE or DELETE.
func (m routerMember) ChooseExecute(ctx context.Context, stmt *Statement) (Target, error) {
	switch {
	case stmt.Op == OpSelect && m.read != nil:
		return m.wrap(m.read.RouteRead(ctx, stmt))
	case stmt.Op == OpUpdate || stmt.Op == OpDelete:
		return m.routeWrite(ctx, &Write{Table: stmt.Table, Stmt: stmt})
	}
	return None(), nil
}

// ChooseShard returns the shard the first WriteRouter that answers names for
// obj, else the default's choice. It fails if a router names other than one
// shard, and, wrapping [ErrNoOpinion], if no router answers and the default
// is no ShardChooser.
func (c *Routers) ChooseShard(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	id, err := c.chain.ChooseShard(ctx, table, obj)
	if err != nil && c.defShard == nil && errors.Is(err, ErrNoOpinion) {
		return "", fmt.Errorf("chooser: %s: no router places %s objects and the default is no ShardChooser: %w",
			c, table.TypeName, err)
	}
	return id, err
}

// RouteWrite asks the WriteRouters about w in order and returns the first
// answer other than [None], or None when every router abstains (the
// default is not asked: see [Routers.ChooseShard]). A router's error other
// than [ErrNoOpinion] is returned wrapping [ErrRefused], naming the router,
// the model and w.Shard. The session asks it about each object whose shard
// is already decided (its Token, or a pin), so that a router can refuse the
// write or, by naming another shard, make the session refuse it.
func (c *Routers) RouteWrite(ctx context.Context, w *Write) (Target, error) {
	for _, m := range c.routers {
		t, err := m.routeWrite(ctx, w)
		if err != nil || !t.IsNone() {
			return t, err
		}
	}
	return None(), nil
}

// ChooseIdentity asks the ReadRouters about a select of key.Table whose
// criteria are its primary-key columns with the key's values, then the
// default's IdentityChooser; with neither it returns the parent's shard for
// a relation load (key.LoadedFrom), else [AllShards].
func (c *Routers) ChooseIdentity(ctx context.Context, key Key) (Target, error) {
	return c.chain.ChooseIdentity(ctx, key)
}

// ChooseExecute asks the ReadRouters about a select, and the WriteRouters
// about an UPDATE or DELETE; then the default's ExecuteChooser; with neither
// it returns the parent's shard for a relation load (stmt.LoadedFrom), else
// [AllShards].
func (c *Routers) ChooseExecute(ctx context.Context, stmt *Statement) (Target, error) {
	return c.chain.ChooseExecute(ctx, stmt)
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
	for _, op := range []Op{OpSelect, OpUpdate} {
		stmt := &Statement{Op: op, Table: table, Criteria: criteria}
		for _, m := range c.routers {
			if t, err := m.ChooseExecute(ctx, stmt); err != nil || !t.IsNone() {
				return nil, err
			}
		}
	}
	return c.defSplit.SplitValues(ctx, table, column, values)
}

// AllowRelation returns the first verdict other than [Abstain] a
// RelationRouter gives, else the default, [SameShard]: [Allow] when both
// objects are on the same shard or either has not been placed yet, and
// [Deny] otherwise.
func (c *Routers) AllowRelation(ctx context.Context, a, b Object) Verdict {
	for _, r := range c.rel {
		if v := r.AllowRelation(ctx, a, b); v != Abstain {
			return v
		}
	}
	return SameShard(a, b)
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

func nameOf(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", v)
}

// KeyColumn returns the shard-key column of table's model as the default
// declares it (a [Scheme]'s KeyColumn, or a column chooser's Column when
// the model has that column), and false when it declares none. The session
// reads it to turn a plain Where("col = ?", v) into a declared criterion,
// which the routers then see in Statement.Criteria as if WhereShardKey had
// declared it.
func (c *Routers) KeyColumn(table *schema.Table) (string, bool) {
	switch d := c.def.(type) {
	case interface {
		KeyColumn(*schema.Table) (string, bool)
	}:
		return d.KeyColumn(table)
	case interface{ Column() string }:
		if col := d.Column(); table != nil && table.FieldMap[col] != nil {
			return col, true
		}
	}
	return "", false
}
