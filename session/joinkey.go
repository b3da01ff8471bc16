package session

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
)

// joinedKey is a WhereShardKey on a column of a joined relation
// ("location.continent"): the statement's rows are the model's rows joined
// with that relation inside each shard, so only the shards that hold the
// relation's matching rows can return any. plan asks the ExecuteChooser
// about the relation's model with the criterion, and narrows the route to
// those shards.
type joinedKey struct {
	path   string // as given: "location" or "Location.Country"
	alias  string // Bun's alias of the joined table: "location", "location__country"
	table  *schema.Table
	crit   chooser.Criterion
	values map[ShardID][]any // each shard's values, when the chooser splits them
}

// resolveJoined checks a WhereShardKey on "path.column": every segment of
// path must be a has-one or belongs-to relation (joined into the main
// query), the select must load it with Relation, and column must be a
// column of the joined model. The values are typed as the column's.
func (q *SelectQuery) resolveJoined(name string, values []any) (joinedKey, error) {
	dot := strings.LastIndexByte(name, '.')
	path, column := name[:dot], name[dot+1:]
	what := fmt.Sprintf("WhereShardKey(%q) on %s", name, q.mi.table.TypeName)
	t := q.mi.table
	var goPath, aliases []string
	for _, seg := range strings.Split(path, ".") {
		var rel *schema.Relation
		for _, r := range t.Relations {
			if strings.EqualFold(r.Field.GoName, seg) || r.Field.Name == seg {
				rel = r
				break
			}
		}
		if rel == nil {
			return joinedKey{}, fmt.Errorf("%w: %s: model %s has no relation %q", ErrInvalidArgument, what, t.TypeName, seg)
		}
		if rel.Type != schema.HasOneRelation && rel.Type != schema.BelongsToRelation {
			return joinedKey{}, fmt.Errorf("%w: %s: %s.%s is not a has-one or belongs-to relation, so the select does not join it "+
				"(a has-many or many-to-many relation is loaded by its own query)", ErrInvalidArgument, what, t.TypeName, rel.Field.GoName)
		}
		goPath = append(goPath, rel.Field.GoName)
		aliases = append(aliases, rel.Field.Name) // Bun's join alias (relation_join.go appendAlias)
		t = rel.JoinTable
	}
	tree := q.rels
	for _, seg := range goPath {
		sub, ok := tree[seg]
		if !ok {
			return joinedKey{}, fmt.Errorf("%w: %s: the select does not join %s; call Relation(%q) on it",
				ErrInvalidArgument, what, strings.Join(goPath, "."), strings.Join(goPath, "."))
		}
		tree = sub
	}
	if _, ok := t.FieldMap[column]; !ok {
		return joinedKey{}, fmt.Errorf("%w: %s: model %s has no column %q", ErrInvalidArgument, what, t.TypeName, column)
	}
	crit, err := typedCriteria(chooser.OpSelect, t, []chooser.Criterion{{Column: column, Values: values}})
	if err != nil {
		return joinedKey{}, err
	}
	return joinedKey{path: path, alias: strings.Join(aliases, "__"), table: t, crit: crit[0]}, nil
}

// narrow intersects a route with the shards a chooser named for a joined
// key, keeping the route's order: All keeps the route as it is.
func narrow(route []ShardID, t chooser.Target) []ShardID {
	if t.IsAll() {
		return route
	}
	return slices.DeleteFunc(slices.Clone(route), func(id ShardID) bool { return !slices.Contains(t.List(), id) })
}

// whereJoined renders the joined keys' conditions for shard id.
func (p *plan) whereJoined(id ShardID, add func(string, ...any)) {
	for _, j := range p.joined {
		vals := j.crit.Values
		if v, ok := j.values[id]; ok {
			vals = v
		}
		if len(vals) == 1 {
			add("?.? = ?", bun.Ident(j.alias), bun.Ident(j.crit.Column), vals[0])
		} else {
			add("?.? IN (?)", bun.Ident(j.alias), bun.Ident(j.crit.Column), bun.List(vals))
		}
	}
}

// planJoined plans a select with WhereShardKey criteria on joined
// relations: the route the statement's own criteria give, narrowed to the
// shards the ExecuteChooser names for each joined criterion (unless a pin
// routes it), each shard with its own values when the chooser splits them.
// A joined reference table narrows nothing: every shard holds a copy.
// The scatter guard applies to the narrowed route. When no shard is left,
// no row can match: the statement runs nowhere, as for criteria that share
// no value.
func (q *SelectQuery) planJoined(ctx context.Context, criteria []chooser.Criterion, skip map[int]bool) (plan, error) {
	s, what := q.s, "select "+q.mi.table.TypeName
	joined := make([]joinedKey, len(q.joined))
	for i, r := range q.joined {
		j, err := q.resolveJoined(r.name, r.values)
		if err != nil {
			return plan{}, err
		}
		joined[i] = j
	}
	o := options(q.opts)
	// The guard is applied below, to the route once narrowed.
	p, err := s.plan(ctx, chooser.OpSelect, q.mi, criteria, append(slices.Clone(q.opts), AllowScatter()))
	if err != nil {
		return plan{}, err
	}
	p.skip, p.joined = skip, joined
	if p.By == "chooser" {
		for i := range p.joined {
			j := &p.joined[i]
			if s.reference(&modelInfo{table: j.table}) {
				// Every shard holds a copy of a reference table, so each
				// shard's own rows may join it: no narrowing.
				continue
			}
			at := fmt.Sprintf("%s: WhereShardKey(%q)", what, j.path+"."+j.crit.Column)
			t, err := s.executeChooser.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: j.table, Criteria: []chooser.Criterion{j.crit}})
			if err != nil {
				return plan{}, fmt.Errorf("session: %s: %w", at, err)
			}
			if t.IsNone() {
				return plan{}, fmt.Errorf("%w: %s: the chooser answered %v", ErrNoShard, at, t)
			}
			if !t.IsAll() {
				if _, err := s.checked(t.List(), "chooser", at); err != nil {
					return plan{}, err
				}
			}
			p.Shards = narrow(p.Shards, t)
			sp, ok := s.executeChooser.(chooser.Splitter)
			if !ok || len(j.crit.Values) < 2 {
				continue
			}
			parts, err := sp.SplitValues(ctx, j.table, j.crit.Column, j.crit.Values)
			if err != nil {
				return plan{}, fmt.Errorf("session: %s: %w", at, err)
			}
			if parts == nil {
				continue
			}
			if err := s.checkSplit(chooser.OpSelect, &modelInfo{table: j.table}, j.crit, s.order, parts); err != nil {
				return plan{}, err
			}
			j.values = parts
			// A clone: p.Shards may be the session's own order (an AllShards route).
			p.Shards = slices.DeleteFunc(slices.Clone(p.Shards), func(id ShardID) bool { _, ok := parts[id]; return !ok })
		}
		if len(p.Shards) == 0 {
			p.Route = Route{By: "criteria"}
		}
		guard := o.scatter == scatterDeny || (s.cfg.noScatter && o.scatter != scatterAllow)
		if guard && len(s.order) > 1 && len(p.Shards) == len(s.order) {
			return plan{}, fmt.Errorf("%w: %s: the chooser sends it to all %d shards; declare a shard key "+
				"(WhereShardKey), pin a shard, or allow it with AllowScatter", ErrScatter, what, len(s.order))
		}
	}
	if err := s.vetSubqueries(q.subs, p.Shards, what); err != nil {
		return plan{}, err
	}
	return p, nil
}
