package session

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// modelInfo is what the session caches per model struct type.
type modelInfo struct {
	typ   reflect.Type // the struct type
	table *schema.Table
	// tokenOf finds the model's embedded identity.Token; nil when the model
	// has none.
	tokenOf func(v reflect.Value) *identity.Token
	// intPK: the model's primary key is one column of a built-in signed
	// integer type, so its identity key is built from Value.Int without
	// boxing (keyOf).
	intPK bool
	// insertHook: *T implements ShardInsertHook (beforeInsert asks this
	// instead of converting every object to an interface).
	insertHook bool

	unitOnce sync.Once
	unitInfo *unitModel // what a unit of work needs; see unit()
}

// destKind is the shape of a destination or model argument.
type destKind uint8

const (
	destStruct   destKind = iota + 1 // *T
	destSlice                        // *[]T
	destSlicePtr                     // *[]*T
	destTable                        // (*T)(nil): names the model only
)

// modelOf analyses a model argument: a pointer to a struct, to a slice of
// structs or of struct pointers, or a typed nil pointer that only names the
// model.
func (s *Session) modelOf(model any) (*modelInfo, error) {
	mi, _, err := s.dest(model)
	return mi, err
}

func (s *Session) dest(model any) (*modelInfo, destKind, error) {
	if model == nil {
		return nil, 0, fmt.Errorf("%w: the model is nil; pass a pointer such as &obj, &objs or (*Model)(nil)", ErrInvalidArgument)
	}
	v := reflect.ValueOf(model)
	if v.Kind() != reflect.Pointer {
		return nil, 0, fmt.Errorf("%w: the model must be a pointer (&obj or &objs), got %T", ErrInvalidArgument, model)
	}
	t := v.Type().Elem()
	var kind destKind
	switch {
	case t.Kind() == reflect.Struct && v.IsNil():
		kind = destTable
	case t.Kind() == reflect.Struct:
		kind = destStruct
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		kind, t = destSlice, t.Elem()
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Pointer && t.Elem().Elem().Kind() == reflect.Struct:
		kind, t = destSlicePtr, t.Elem().Elem()
	default:
		return nil, 0, fmt.Errorf("%w: the model must point to a struct or a slice of structs, got %T", ErrInvalidArgument, model)
	}
	if kind != destTable && kind != destStruct && v.IsNil() {
		return nil, 0, fmt.Errorf("%w: the model %T is a nil pointer", ErrInvalidArgument, model)
	}
	mi, err := s.info(t)
	return mi, kind, err
}

func (s *Session) info(t reflect.Type) (*modelInfo, error) {
	if mi, ok := s.models.Load(t); ok {
		return mi.(*modelInfo), nil
	}
	mi := &modelInfo{typ: t}
	var err error
	func() {
		defer func() { // Bun panics on types it cannot map
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: %s is not a Bun model: %v", ErrInvalidArgument, t, r)
			}
		}()
		mi.table = s.dialect.Tables().Get(t)
	}()
	if err != nil {
		return nil, err
	}
	if err := s.checkTableNames(mi.table); err != nil {
		return nil, err
	}
	mi.tokenOf = identity.TokenFunc(t)
	mi.insertHook = reflect.PointerTo(t).Implements(reflect.TypeFor[ShardInsertHook]())
	if pks := mi.table.PKs; len(pks) == 1 {
		switch pks[0].StructField.Type {
		case reflect.TypeFor[int](), reflect.TypeFor[int8](), reflect.TypeFor[int16](), reflect.TypeFor[int32](), reflect.TypeFor[int64]():
			mi.intPK = true
		}
	}
	got, _ := s.models.LoadOrStore(t, mi)
	return got.(*modelInfo), nil
}

// token returns the Token of v (an addressable struct of the model), or nil
// if the model has none.
func (mi *modelInfo) token(v reflect.Value) *identity.Token {
	if mi.tokenOf == nil {
		return nil
	}
	return mi.tokenOf(v)
}

// relTree is the set of relation paths a statement loads: "Reports.Location"
// becomes {"Reports": {"Location": {}}}.
type relTree map[string]relTree

func (t relTree) add(path string) {
	for _, name := range strings.Split(path, ".") {
		sub, ok := t[name]
		if !ok {
			sub = relTree{}
			t[name] = sub
		}
		t = sub
	}
}

// mark is what a load stamps on objects: their shard, and whether the
// statement was pinned (see identity.Token.PinShard), as the interned
// placement every object of the load shares (found once per shard, not per
// row).
type mark struct {
	id     ShardID
	pinned bool
	p      *identity.Placement
}

func (m mark) on(tok *identity.Token) {
	if m.p == nil {
		m.p = identity.Place(m.id, m.pinned)
	}
	tok.SetPlacement(m.p)
}

// stamp records the shard of id on v (an addressable model struct) and on
// every object loaded with it through the relations in rels.
func (s *Session) stamp(v reflect.Value, mi *modelInfo, rels relTree, id mark) {
	if tok := mi.token(v); tok != nil {
		id.on(tok)
	}
	for name, sub := range rels {
		rel, ok := mi.table.Relations[name]
		if !ok {
			continue
		}
		child, err := s.info(rel.JoinTable.Type)
		if err != nil {
			continue
		}
		s.stampAny(v.FieldByIndex(rel.Field.Index), child, sub, id)
	}
}

func (s *Session) stampAny(v reflect.Value, mi *modelInfo, rels relTree, id mark) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			s.stamp(v.Elem(), mi, rels, id)
		}
	case reflect.Struct:
		s.stamp(v, mi, rels, id)
	case reflect.Slice:
		for i := range v.Len() {
			s.stampAny(v.Index(i), mi, rels, id)
		}
	}
}

// stampAll stamps every element of a destination.
func (s *Session) stampAll(dst reflect.Value, kind destKind, mi *modelInfo, rels relTree, id mark) {
	if mi.tokenOf == nil && len(rels) == 0 {
		return
	}
	switch kind {
	case destStruct:
		s.stamp(dst.Elem(), mi, rels, id)
	case destSlice, destSlicePtr:
		s.stampAny(dst.Elem(), mi, rels, id)
	}
}

// objectsOf returns the model structs an argument of kind holds (v is the
// pointer's target), addressable, so that writes through them reach the
// caller's objects. Nil elements of a []*T are left out; nilAt is the index
// of the first one, or -1.
func objectsOf(v reflect.Value, kind destKind) (objs []reflect.Value, nilAt int) {
	nilAt = -1
	switch kind {
	case destStruct:
		return []reflect.Value{v}, -1
	case destSlice:
		objs = make([]reflect.Value, v.Len())
		for i := range objs {
			objs[i] = v.Index(i)
		}
	case destSlicePtr:
		objs = make([]reflect.Value, 0, v.Len())
		for i := range v.Len() {
			el := v.Index(i)
			if el.IsNil() {
				if nilAt < 0 {
					nilAt = i
				}
				continue
			}
			objs = append(objs, el.Elem())
		}
	}
	return objs, nilAt
}

// checkTableNames checks the table names of t and of its relations' tables
// as each shard's named arguments expand them (a table-name prefix,
// bun:"table:?(prefix)orders", with db.WithNamedArg("prefix", bun.Safe("a_"))).
// Bun writes a table name inside double quotes and a bun.Safe argument as
// it is, so a double quote in the expanded name would end the identifier
// and let the rest reach SQL; such a name is ErrInvalidArgument.
func (s *Session) checkTableNames(t *schema.Table) error {
	tables := []*schema.Table{t}
	for _, rel := range t.Relations {
		tables = append(tables, rel.JoinTable)
		if rel.M2MTable != nil {
			tables = append(tables, rel.M2MTable)
		}
	}
	for _, tt := range tables {
		if tt == nil || strings.IndexByte(tt.Name, '?') < 0 {
			continue
		}
		for _, id := range s.order {
			name := s.shards[id].NewRaw(tt.Name).String()
			if strings.IndexByte(name, '"') >= 0 {
				return fmt.Errorf("%w: model %s: table name %q becomes %q on shard %s after the shard's named arguments; "+
					"a table name must not hold a double quote", ErrInvalidArgument, tt.TypeName, tt.Name, name, id)
			}
		}
	}
	return nil
}
