package chooser

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// maxFollow bounds how many parents FollowParent walks up, so that a cycle
// of belongs-to pointers (a.Parent = b, b.Parent = a) fails instead of
// looping.
const maxFollow = 32

// FollowParent is a [ShardChooser] that places a child on its parent's
// shard, the co-location that relation loads and foreign keys inside one
// shard need (SQLAlchemy's weather example places a Report by its
// Location). For an object whose model has a belongs-to relation that is
// set (a non-nil pointer, or a struct value that carries a placed Token), it
// returns the parent's shard: the shard on the parent's [identity.Token], or
// else the shard this chooser picks for the parent, walking up a chain of
// parents. Objects with no parent set are placed by the base chooser.
//
// A parent known only by its foreign-key column (LocationID set, Location
// nil) is not looked up: the object goes to the base chooser, which may
// route by that column. A chain of more than 32 parents (a cycle) is an
// error. FollowParent is safe for concurrent use.
type FollowParent struct {
	base      ShardChooser
	relations []string
	// rels caches, per model (*schema.Table), the relations to try (a
	// *followRels): one entry per model, so it is bounded by the
	// program's models.
	rels sync.Map
	// last is the model asked about last and its relations: a flush places
	// thousands of objects of one model in a row, and an atomic load is
	// cheaper than rels' lookup.
	last atomic.Pointer[followRels]
}

type followRels struct {
	table *schema.Table
	rels  []*schema.Relation
}

var _ ShardChooser = (*FollowParent)(nil)

// NewFollowParent returns a chooser that places objects with their parent
// and everything else with base. relations names the belongs-to relations
// to follow (Go field names, such as "Location"), in the order they are
// tried; with none, every belongs-to relation of the model is tried, in
// field order. A named relation that a model lacks is skipped for that
// model. base may be nil when every object placed has a parent.
func NewFollowParent(base ShardChooser, relations ...string) *FollowParent {
	return &FollowParent{base: base, relations: slices.Clone(relations)}
}

// ChooseShard returns the shard of obj's parent, or what the base chooser
// says for an object without one. It fails when a named relation is not
// belongs-to, when the base chooser fails, or when there is no base chooser
// for an object without a parent.
func (c *FollowParent) ChooseShard(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	return c.choose(ctx, table, obj, 0)
}

func (c *FollowParent) choose(ctx context.Context, table *schema.Table, obj any, depth int) (identity.ShardID, error) {
	if depth > maxFollow {
		return "", fmt.Errorf("chooser: FollowParent: more than %d parents above %s (a cycle of belongs-to pointers?)", maxFollow, table.TypeName)
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return "", fmt.Errorf("chooser: FollowParent: %s: want a non-nil pointer to the model, got %T", table.TypeName, obj)
	}
	rels, err := c.parents(table)
	if err != nil {
		return "", err
	}
	for _, rel := range rels {
		parent, ok := parentOf(v.Elem(), rel)
		if !ok {
			continue
		}
		if id, ok := identity.ShardOf(parent); ok {
			return id, nil
		}
		id, err := c.choose(ctx, rel.JoinTable, parent, depth+1)
		if err != nil {
			return "", fmt.Errorf("%w (placing the parent %s of %s)", err, rel.Field.GoName, table.TypeName)
		}
		return id, nil
	}
	if c.base == nil {
		return "", fmt.Errorf("chooser: FollowParent: %s has no parent set (%s) and there is no base chooser",
			table.TypeName, relNames(rels))
	}
	return c.base.ChooseShard(ctx, table, obj)
}

// parents returns the belongs-to relations to try for table, in order.
func (c *FollowParent) parents(table *schema.Table) ([]*schema.Relation, error) {
	if l := c.last.Load(); l != nil && l.table == table {
		return l.rels, nil
	}
	if v, ok := c.rels.Load(table); ok {
		l := v.(*followRels)
		c.last.Store(l)
		return l.rels, nil
	}
	rels, err := c.findParents(table)
	if err != nil {
		return nil, err
	}
	l := &followRels{table, rels}
	c.rels.Store(table, l)
	c.last.Store(l)
	return rels, nil
}

func (c *FollowParent) findParents(table *schema.Table) ([]*schema.Relation, error) {
	if len(c.relations) > 0 {
		var out []*schema.Relation
		for _, name := range c.relations {
			rel, ok := table.Relations[name]
			if !ok {
				continue
			}
			if rel.Type != schema.BelongsToRelation {
				return nil, fmt.Errorf("chooser: FollowParent: %s.%s is not a belongs-to relation", table.TypeName, name)
			}
			out = append(out, rel)
		}
		return out, nil
	}
	var out []*schema.Relation
	for _, rel := range table.Relations {
		if rel.Type == schema.BelongsToRelation {
			out = append(out, rel)
		}
	}
	// Map order is random: field order makes the choice deterministic.
	slices.SortFunc(out, func(a, b *schema.Relation) int { return slices.Compare(a.Field.Index, b.Field.Index) })
	return out, nil
}

// parentOf returns a pointer to the parent rel points to from the struct v,
// and false when it is not set: a nil pointer, or a struct value whose Token
// is unplaced (a zero struct is "not set").
func parentOf(v reflect.Value, rel *schema.Relation) (any, bool) {
	f, err := v.FieldByIndexErr(rel.Field.Index)
	if err != nil { // a nil embedded pointer on the way
		return nil, false
	}
	switch f.Kind() {
	case reflect.Pointer:
		if f.IsNil() {
			return nil, false
		}
		return f.Interface(), true
	case reflect.Struct:
		if !f.CanAddr() {
			return nil, false
		}
		p := f.Addr().Interface()
		if _, ok := identity.ShardOf(p); !ok {
			return nil, false
		}
		return p, true
	}
	return nil, false
}

func relNames(rels []*schema.Relation) string {
	if len(rels) == 0 {
		return "no belongs-to relation"
	}
	names := make([]string, len(rels))
	for i, r := range rels {
		names[i] = r.Field.GoName
	}
	return fmt.Sprintf("%v all nil", names)
}
