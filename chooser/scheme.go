package chooser

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Strategy maps a shard-key value to its shard, whatever column holds the
// value: [Hash], [Jump], [Ranges], [ValueMap] and [FromID] are strategies. A
// [Scheme] applies one strategy to each model's own key column, so that
// tenants.id, projects.tenant_id and tasks.tenant_id, declared with one
// strategy, put a tenant's rows on one shard (Citus's distribution column
// with a colocation group, a Vitess vindex per table).
//
// The interface is sealed: only this package's strategies implement it. A
// chooser of another kind routes a model of a scheme through [RoutedBy].
type Strategy interface {
	column() *byColumn
}

func (h *Hash) column() *byColumn      { return &h.col }
func (j *Jump) column() *byColumn      { return &j.col }
func (c *Ranges[K]) column() *byColumn { return &c.col }
func (c *ValueMap[K]) column() *byColumn {
	return &c.col
}
func (c *FromID) column() *byColumn { return &c.col }

// Declaration is one model's entry in a [Scheme]; [Distributed],
// [Reference] and [RoutedBy] make them.
type Declaration struct {
	model     any
	column    string
	strategy  Strategy
	reference bool
	custom    any
	fn        string // the function that made it, for errors
}

// Distributed declares that model's rows are spread over the shards by the
// value of its column, as strategy maps it. model is a typed nil pointer,
// (*Project)(nil).
func Distributed(model any, column string, strategy Strategy) Declaration {
	return Declaration{model: model, column: column, strategy: strategy, fn: "Distributed"}
}

// Reference declares that model is a reference table (Citus's reference
// table): a full copy of it lives on every shard. Reads go to one shard
// (the parent's shard for a relation load, else the scheme's first shard);
// a session writes its objects and statements on every shard, in one
// two-phase unit of work.
func Reference(model any) Declaration {
	return Declaration{model: model, reference: true, fn: "Reference"}
}

// RoutedBy declares that model is routed by c, a chooser with any of the
// roles [ShardChooser], [IdentityChooser], [ExecuteChooser] and [Splitter]
// (a [Lookup] on the model's key column, a chooser of the application's
// own). A role c lacks fails for that model with an error naming it.
func RoutedBy(model any, c any) Declaration {
	return Declaration{model: model, custom: c, fn: "RoutedBy"}
}

// Scheme is a sharding scheme: for each model, how its rows are spread over
// the shards ([Distributed] by its own key column, [Reference] on every
// shard, or [RoutedBy] a chooser of its own). It is the session's three
// choosers at once, and a [Splitter], a [RelationRouter] and a
// [ReferenceTables]:
//
//   - ChooseShard places an object by its model's key column;
//   - ChooseIdentity is exact when that column is a primary-key column,
//     else the parent's shard for a relation load, else every shard;
//   - ChooseExecute routes by the values declared on the model's key
//     column (WhereShardKey, or a plain Where the session recognizes),
//     else the parent's shard for a relation load, else every shard;
//   - SplitValues splits an IN list on a model's key column per shard;
//   - AllowRelation allows any relation with a reference object, and
//     others between objects on one shard (or not yet placed).
//
// A model the scheme does not declare fails every question with an error
// that names it and wraps [ErrUndeclared]: never a silent fan-out nor a
// default. Scheme is immutable after [NewScheme] and safe for concurrent
// use if the choosers given to RoutedBy are.
type Scheme struct {
	shards []identity.ShardID
	read   Target // where reference tables are read outside relation loads
	models map[reflect.Type]*schemeModel
	names  []string       // the declared models' names, in order, for errors
	order  []*schemeModel // the declared models, in order, for String
}

// schemeModel is one declared model: exactly one of col, custom and
// reference is set.
type schemeModel struct {
	name      string
	column    string
	col       *byColumn
	reference bool
	custom    struct {
		shard ShardChooser
		ident IdentityChooser
		exec  ExecuteChooser
		split Splitter
		name  string
	}
	hasCustom bool
}

// ReferenceTables is an optional ability of a [ShardChooser], found by type
// assertion: it says which models are reference tables, copied to every
// shard. A session writes such a model's objects and statements on every
// shard in one two-phase unit of work, and never asks the ShardChooser to
// place them. [Scheme] implements it.
type ReferenceTables interface {
	IsReference(table *schema.Table) bool
}

var (
	_ ShardChooser    = (*Scheme)(nil)
	_ IdentityChooser = (*Scheme)(nil)
	_ ExecuteChooser  = (*Scheme)(nil)
	_ Splitter        = (*Scheme)(nil)
	_ RelationRouter  = (*Scheme)(nil)
	_ ReferenceTables = (*Scheme)(nil)
)

// NewScheme returns the scheme of decls over shards, the session's shards;
// reference tables are read from the first unless a relation load says
// otherwise. It fails, naming the declaration, for no shards, an empty or
// repeated shard id, a model that is not a pointer to a struct, a model
// declared twice, an empty column, a nil strategy or chooser, and a
// strategy that maps keys to a shard not in shards.
//
//	byTenant, _ := chooser.NewHash("tenant_id", chooser.Spread(1024, shards...))
//	scheme, err := chooser.NewScheme(shards,
//		chooser.Distributed((*Tenant)(nil), "id", byTenant),
//		chooser.Distributed((*Project)(nil), "tenant_id", byTenant),
//		chooser.Reference((*Plan)(nil)),
//	)
func NewScheme(shards []identity.ShardID, decls ...Declaration) (*Scheme, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("chooser: NewScheme: no shards")
	}
	for i, id := range shards {
		if id == "" {
			return nil, fmt.Errorf("chooser: NewScheme: shard %d is the empty shard ID", i)
		}
		if slices.Contains(shards[:i], id) {
			return nil, fmt.Errorf("chooser: NewScheme: shard %s is listed twice", id)
		}
	}
	s := &Scheme{
		shards: slices.Clone(shards),
		read:   Shards(shards[0]),
		models: make(map[reflect.Type]*schemeModel, len(decls)),
	}
	for i, d := range decls {
		what := fmt.Sprintf("chooser: NewScheme: declaration %d (%s(%T))", i, d.fn, d.model)
		t := reflect.TypeOf(d.model)
		if d.fn == "" {
			return nil, fmt.Errorf("chooser: NewScheme: declaration %d is the zero Declaration; make it with Distributed, Reference or RoutedBy", i)
		}
		if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
			return nil, fmt.Errorf("%s: the model must be a pointer to a model struct, such as (*Project)(nil)", what)
		}
		t = t.Elem()
		if s.models[t] != nil {
			return nil, fmt.Errorf("%s: model %s is declared twice", what, t.Name())
		}
		m := &schemeModel{name: t.Name(), column: d.column, reference: d.reference}
		switch {
		case d.reference:
		case d.custom != nil:
			if v := reflect.ValueOf(d.custom); v.Kind() == reflect.Pointer && v.IsNil() {
				return nil, fmt.Errorf("%s: the chooser is a nil %T", what, d.custom)
			}
			m.hasCustom = true
			m.custom.shard, _ = d.custom.(ShardChooser)
			m.custom.ident, _ = d.custom.(IdentityChooser)
			m.custom.exec, _ = d.custom.(ExecuteChooser)
			m.custom.split, _ = d.custom.(Splitter)
			m.custom.name = nameOf(d.custom)
			if m.custom.shard == nil && m.custom.ident == nil && m.custom.exec == nil && m.custom.split == nil {
				return nil, fmt.Errorf("%s: %s is not a ShardChooser, IdentityChooser, ExecuteChooser or Splitter", what, m.custom.name)
			}
		case d.fn == "RoutedBy":
			return nil, fmt.Errorf("%s: the chooser is nil", what)
		default:
			if d.column == "" {
				return nil, fmt.Errorf("%s: empty key column", what)
			}
			if d.strategy == nil || reflect.ValueOf(d.strategy).IsNil() {
				return nil, fmt.Errorf("%s: the strategy is nil", what)
			}
			col := d.strategy.column().on(d.column)
			for _, tg := range col.targets {
				if id := tg.shards[0]; !slices.Contains(shards, id) {
					return nil, fmt.Errorf("%s: the strategy %s maps keys to shard %s, which is not one of %v",
						what, nameOf(d.strategy), id, shards)
				}
			}
			m.col = &col
		}
		s.models[t] = m
		s.names = append(s.names, m.name)
		s.order = append(s.order, m)
	}
	return s, nil
}

// model returns the declaration of table's model, or an error naming it.
func (s *Scheme) model(table *schema.Table, role string) (*schemeModel, error) {
	if table == nil {
		return nil, fmt.Errorf("chooser: Scheme: %s called with a nil table", role)
	}
	if m := s.models[table.Type]; m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("chooser: Scheme: %s: model %s is not declared (the scheme declares %s); "+
		"declare it with chooser.Distributed, chooser.Reference or chooser.RoutedBy: %w",
		role, table.TypeName, strings.Join(s.names, ", "), ErrUndeclared)
}

// keyColumn checks that table has the declared key column, so that a typo
// in a declaration fails by name rather than fanning every statement out.
func (m *schemeModel) keyColumn(table *schema.Table) error {
	if _, ok := table.FieldMap[m.column]; !ok {
		return fmt.Errorf("chooser: Scheme: model %s has no column %q, its declared shard key", table.TypeName, m.column)
	}
	return nil
}

func (m *schemeModel) lacks(role string) error {
	return fmt.Errorf("chooser: Scheme: model %s is routed by %s, which is no %s", m.name, m.custom.name, role)
}

// KeyColumn returns the shard-key column declared for table's model, and
// false for a reference table, a model routed by its own chooser, or one
// the scheme does not declare.
func (s *Scheme) KeyColumn(table *schema.Table) (string, bool) {
	if table == nil {
		return "", false
	}
	m := s.models[table.Type]
	if m == nil || m.col == nil {
		return "", false
	}
	return m.column, true
}

// IsReference reports whether table's model is declared a reference table.
func (s *Scheme) IsReference(table *schema.Table) bool {
	if table == nil {
		return false
	}
	m := s.models[table.Type]
	return m != nil && m.reference
}

// ChooseShard places obj by its model's key column. It fails for an
// undeclared model (wrapping [ErrUndeclared]), for a reference table (a
// session writes those on every shard and never asks), and as the model's
// strategy fails (a NULL key, a value it cannot map).
func (s *Scheme) ChooseShard(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	m, err := s.model(table, "ChooseShard")
	switch {
	case err != nil:
		return "", err
	case m.reference:
		return "", fmt.Errorf("chooser: Scheme: ChooseShard: model %s is a reference table, copied to every shard; "+
			"no one shard places it (write it through the session, which writes every shard in one two-phase unit)", m.name)
	case m.hasCustom:
		if m.custom.shard == nil {
			return "", m.lacks("ShardChooser")
		}
		return m.custom.shard.ChooseShard(ctx, table, obj)
	}
	return m.col.chooseShard(table, obj)
}

// ChooseIdentity is exact when the model's key column is a primary-key
// column; else it is the parent's shard for a relation load
// (key.LoadedFrom), else [AllShards]. A reference table is read from the
// parent's shard for a relation load, else from the scheme's first shard.
// It fails for an undeclared model (wrapping [ErrUndeclared]) and a key
// column the model lacks.
func (s *Scheme) ChooseIdentity(ctx context.Context, key Key) (Target, error) {
	m, err := s.model(key.Table, "ChooseIdentity")
	switch {
	case err != nil:
		return Target{}, err
	case m.reference:
		return s.readReference(key.LoadedFrom), nil
	case m.hasCustom:
		if m.custom.ident == nil {
			return Target{}, m.lacks("IdentityChooser")
		}
		return m.custom.ident.ChooseIdentity(ctx, key)
	}
	if err := m.keyColumn(key.Table); err != nil {
		return Target{}, err
	}
	return m.col.chooseIdentity(key)
}

// ChooseExecute routes a statement by the values declared on its model's
// key column, in the order of the values and without repeats; with none,
// the parent's shard for a relation load (stmt.LoadedFrom), else
// [AllShards]. A select of a reference table reads one shard (the parent's
// for a relation load, else the scheme's first); an UPDATE or DELETE of one
// goes to AllShards. It fails for an undeclared model (wrapping
// [ErrUndeclared]) and a key column the model lacks.
func (s *Scheme) ChooseExecute(ctx context.Context, stmt *Statement) (Target, error) {
	if stmt == nil {
		return Target{}, fmt.Errorf("chooser: Scheme: ChooseExecute called with a nil statement")
	}
	m, err := s.model(stmt.Table, "ChooseExecute")
	switch {
	case err != nil:
		return Target{}, err
	case m.reference && stmt.Op == OpSelect:
		return s.readReference(stmt.LoadedFrom), nil
	case m.reference:
		return AllShards(), nil
	case m.hasCustom:
		if m.custom.exec == nil {
			return Target{}, m.lacks("ExecuteChooser")
		}
		return m.custom.exec.ChooseExecute(ctx, stmt)
	}
	if err := m.keyColumn(stmt.Table); err != nil {
		return Target{}, err
	}
	return m.col.chooseExecute(stmt)
}

func (s *Scheme) readReference(from identity.ShardID) Target {
	if from != "" {
		return Shards(from)
	}
	return s.read
}

// SplitValues groups the values of an IN list on a model's key column by
// the shard that owns them; it returns nil, nil for any other column and for
// reference tables. It fails for an undeclared model (wrapping
// [ErrUndeclared]).
func (s *Scheme) SplitValues(ctx context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	m, err := s.model(table, "SplitValues")
	switch {
	case err != nil:
		return nil, err
	case m.reference:
		return nil, nil
	case m.hasCustom:
		if m.custom.split == nil {
			return nil, nil
		}
		return m.custom.split.SplitValues(ctx, table, column, values)
	}
	return m.col.splitValues(table, column, values)
}

// AllowRelation allows a relation to or from a reference object (its table
// is on every shard), and between other objects answers as the default,
// [SameShard]: allowed when both are on one shard or either has not been
// placed yet, denied otherwise. It abstains for a
// model the scheme does not declare, so that a router chain decides.
func (s *Scheme) AllowRelation(_ context.Context, a, b Object) Verdict {
	if a.Table == nil || b.Table == nil || s.models[a.Table.Type] == nil || s.models[b.Table.Type] == nil {
		return Abstain
	}
	if s.IsReference(a.Table) || s.IsReference(b.Table) {
		return Allow
	}
	return SameShard(a, b)
}

// String returns "chooser.Scheme(Tenant.id, Project.tenant_id, Plan
// reference, ...)".
func (s *Scheme) String() string {
	parts := make([]string, len(s.order))
	for i, m := range s.order {
		switch {
		case m.reference:
			parts[i] = m.name + " reference"
		case m.hasCustom:
			parts[i] = m.name + " by " + m.custom.name
		default:
			parts[i] = m.name + "." + m.column
		}
	}
	return "chooser.Scheme(" + strings.Join(parts, ", ") + ")"
}
