package session

import (
	"fmt"
	"slices"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// mergeCriteria folds the declared shard-key criteria into one per column,
// as SQL's AND does: the value lists of several criteria on one column are
// intersected, and criteria on different columns stay side by side (ANDed).
// Values are equal when their canonical forms are (identity.Canonical:
// int32(2) and int64(2) are one value); the intersection keeps the first
// criterion's order and drops repeats. none reports that a column's
// intersection is empty, so that no row can match.
//
// Criteria that name each column once are returned as they are.
func mergeCriteria(criteria []chooser.Criterion) (merged []chooser.Criterion, none bool) {
	repeated := false
	for i, c := range criteria {
		repeated = repeated || slices.ContainsFunc(criteria[:i], func(d chooser.Criterion) bool { return d.Column == c.Column })
	}
	if !repeated {
		return criteria, false
	}
	for i, c := range criteria {
		at := slices.IndexFunc(merged, func(d chooser.Criterion) bool { return d.Column == c.Column })
		if at >= 0 {
			continue // folded into its column's first criterion below
		}
		keep := map[any]bool{}
		var vals []any
		for _, v := range c.Values {
			k := identity.Canonical(v)
			if !keep[k] {
				keep[k] = true
				vals = append(vals, v)
			}
		}
		for _, d := range criteria[i+1:] {
			if d.Column != c.Column {
				continue
			}
			in := make(map[any]bool, len(d.Values))
			for _, v := range d.Values {
				in[identity.Canonical(v)] = true
			}
			vals = slices.DeleteFunc(vals, func(v any) bool { return !in[identity.Canonical(v)] })
		}
		merged = append(merged, chooser.Criterion{Column: c.Column, Values: vals})
		none = none || len(vals) == 0
	}
	return merged, none
}

// checkSplit checks a Splitter's answer for criterion c against the route:
// every value must go to exactly one shard, each shard must be one of the
// route's, and no value may appear that c does not declare. A value left
// out would silently lose its rows; an invented one would return rows
// nobody asked for.
func (s *Session) checkSplit(op chooser.Op, mi *modelInfo, c chooser.Criterion, route []ShardID, parts map[ShardID][]any) error {
	name := fmt.Sprintf("%T", s.executeChooser)
	if st, ok := s.executeChooser.(fmt.Stringer); ok {
		name = st.String()
	}
	what := fmt.Sprintf("%s %s: the Splitter %s's answer %v for column %s", op, mi.table.TypeName, name, parts, c.Column)
	declared := make(map[any]bool, len(c.Values))
	for _, v := range c.Values {
		declared[identity.Canonical(v)] = true
	}
	owner := make(map[any]ShardID, len(c.Values))
	ids := make([]ShardID, 0, len(parts))
	for id := range parts {
		ids = append(ids, id)
	}
	slices.Sort(ids) // errors name the same shard on every run
	for _, id := range ids {
		if _, ok := s.shards[id]; !ok {
			return fmt.Errorf("%w %q: %s puts %#v on it (the session has %v)", ErrUnknownShard, id, what, parts[id], s.order)
		}
		if !slices.Contains(route, id) {
			return fmt.Errorf("%w %q: %s puts %#v on a shard outside the statement's route %v",
				ErrUnknownShard, id, what, parts[id], route)
		}
		for _, v := range parts[id] {
			k := identity.Canonical(v)
			if !declared[k] {
				return fmt.Errorf("%w: %s puts %#v, a value the statement does not declare, on shard %s",
					ErrInvalidArgument, what, v, id)
			}
			if o, ok := owner[k]; ok && o != id {
				return fmt.Errorf("%w: %s puts %#v on shards %s and %s; a value has one owner",
					ErrAmbiguous, what, v, o, id)
			}
			owner[k] = id
		}
	}
	for _, v := range c.Values {
		if _, ok := owner[identity.Canonical(v)]; !ok {
			return fmt.Errorf("%w: %s puts %#v on no shard, which would lose its rows", ErrNoShard, what, v)
		}
	}
	return nil
}
