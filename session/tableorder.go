package session

import (
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun/schema"
)

// orderTables returns one shard's tables in an order that creates every
// table after the tables its foreign keys reference: the relations Bun
// makes a foreign key of (schema.Relation.References, as foreignKeys adds
// them), and a many-to-many join table after both of its sides. Tables stay
// in the given order where no foreign key decides (a stable topological
// sort), and a table referring to itself needs nothing first. References
// to tables not in the list are no constraint: the table is not placed on
// this shard, so foreignKeys adds no key to it.
//
// When the references form a cycle, no order creates them with foreign
// keys: with fks set it fails naming the cycle; without, the cycle's tables
// keep their given order.
func orderTables(tables []PlacedTable, fks bool) ([]PlacedTable, error) {
	in := make(map[*schema.Table]bool, len(tables))
	for _, pt := range tables {
		in[pt.Model] = true
	}
	// deps[t]: the listed tables t must come after.
	deps := make(map[*schema.Table][]*schema.Table, len(tables))
	after := func(t, dep *schema.Table) {
		if t != dep && in[t] && in[dep] && !slices.Contains(deps[t], dep) {
			deps[t] = append(deps[t], dep)
		}
	}
	for _, pt := range tables {
		t := pt.Model
		names := make([]string, 0, len(t.Relations))
		for name := range t.Relations {
			names = append(names, name)
		}
		slices.Sort(names) // a deterministic cycle message
		for _, name := range names {
			rel := t.Relations[name]
			if rel.References() {
				after(t, rel.JoinTable)
			}
			if rel.Type == schema.ManyToManyRelation && rel.M2MTable != nil {
				after(rel.M2MTable, t)
				after(rel.M2MTable, rel.JoinTable)
			}
		}
	}
	out := make([]PlacedTable, 0, len(tables))
	done := make(map[*schema.Table]bool, len(tables))
	rest := slices.Clone(tables)
	for len(rest) > 0 {
		next := slices.IndexFunc(rest, func(pt PlacedTable) bool {
			return !slices.ContainsFunc(deps[pt.Model], func(d *schema.Table) bool { return !done[d] })
		})
		if next < 0 {
			if fks {
				return nil, fmt.Errorf("the foreign keys of %s form a cycle, so no order creates these tables with them; "+
					"create them without WithForeignKeys and add one of the keys afterwards (ALTER TABLE ... ADD FOREIGN KEY, in a migration)",
					cycle(rest[0].Model, deps, done))
			}
			next = 0 // no key to honour: the given order breaks the cycle
		}
		done[rest[next].Model] = true
		out = append(out, rest[next])
		rest = slices.Delete(rest, next, next+1)
	}
	return out, nil
}

// cycle follows not-yet-ordered dependencies from t until one repeats, and
// renders that cycle as "A -> B -> A". Every table left has such a
// dependency, so the walk ends on a repeat.
func cycle(t *schema.Table, deps map[*schema.Table][]*schema.Table, done map[*schema.Table]bool) string {
	var path []*schema.Table
	for !slices.Contains(path, t) {
		path = append(path, t)
		for _, d := range deps[t] {
			if !done[d] {
				t = d
				break
			}
		}
	}
	path = path[slices.Index(path, t):]
	names := make([]string, 0, len(path)+1)
	for _, p := range path {
		names = append(names, p.TypeName)
	}
	return strings.Join(append(names, t.TypeName), " -> ")
}

// orderPlaced orders each shard's tables with orderTables. It fails with
// ErrInvalidArgument, naming the shard, for a cycle of foreign keys when fks
// is set.
func orderPlaced(order []ShardID, placed map[ShardID][]PlacedTable, fks bool) (map[ShardID][]PlacedTable, error) {
	out := make(map[ShardID][]PlacedTable, len(placed))
	for _, id := range order {
		tables, ok := placed[id]
		if !ok {
			continue
		}
		sorted, err := orderTables(tables, fks)
		if err != nil {
			return nil, fmt.Errorf("session: create tables: %w: on shard %s, %v", ErrInvalidArgument, id, err)
		}
		out[id] = sorted
	}
	return out, nil
}
