package session

import (
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/bunshard/bunshard/identity"
)

// trackInserted adds to the identity map the objects a unit's NewInsert
// wrote, wrote[id] being shard id's objects and rows[id] the rows its
// INSERT affected (see InsertQuery.Exec for the rules).
func (u *UnitOfWork) trackInserted(q *InsertQuery, mi *modelInfo, wrote map[ShardID][]reflect.Value, rows map[ShardID]int64) {
	pks := make([]string, len(mi.table.PKs))
	for i, f := range mi.table.PKs {
		pks[i] = f.Name
	}
	if !insertKeepsKeys(pks, q.conflict, q.returns, q.columns, q.excluded, q.values, q.applied) {
		return
	}
	expired := len(q.ops) > 0 // the row may differ from the object (InsertQuery.Exec)
	plain := !q.on            // every accepted row was inserted, none updated
	for _, id := range sortedKeys(wrote) {
		objs := wrote[id]
		if rows[id] != int64(len(objs)) {
			continue // some were skipped, and which is not known
		}
		for _, v := range objs {
			u.trackOne(mi, id, v, expired, plain)
		}
	}
}

// trackOne tracks v (an addressable struct of mi's model) as stored on
// shard id, just written by a NewInsert.
func (u *UnitOfWork) trackOne(mi *modelInfo, id ShardID, v reflect.Value, expired, inserted bool) {
	p := v.Addr()
	e, tracked := u.lookup(p.Interface())
	switch {
	case !tracked:
	case e.state == statePersistent && e.shard == id:
		u.expire(e) // a stored object upserted again: the statement may have written its row
		return
	case e.state != statePending:
		return
	}
	// New, or added and not yet flushed (autoflush off): the INSERT wrote
	// it, so it is stored now and its pending insert is done.
	for _, f := range mi.table.PKs {
		if f.Value(v).IsZero() {
			return // no key came back: which row it is is not known
		}
	}
	key := identity.NewKey(mi.typ, id, pkOf(mi, v)...)
	if other, ok := u.ids.Get(key); ok {
		if other.state == statePersistent {
			u.expire(other) // another object of the row: the tracked one wins, and shows the row as written once reloaded
		}
		return
	}
	sn := u.snapshot(mi, v)
	// The INSERT wrote no relation rows: recording none makes the next
	// flush write the children and links the object holds, as it would
	// for an added object.
	for i := range sn.owned {
		sn.owned[i] = nil
	}
	for i := range sn.links {
		sn.links[i] = nil
	}
	if !tracked {
		e = &entry{ptr: p.Interface(), mi: mi}
		u.track(e)
	}
	e.state, e.shard, e.st, e.expired = statePersistent, id, &stored{key: key, snap: sn}, expired
	u.ids.Add(key, e)
	if inserted {
		u.inserted = append(u.inserted, e) // a rollback removes its row: expunge it then
	}
}

// insertKeepsKeys reports whether an INSERT built with these calls leaves
// each object it wrote holding the primary key (columns pks) of the row
// written from it: the key was sent from the object and a conflict could
// only update the row of that key, or the key came back through RETURNING.
// conflict holds the On texts, returns the Returning texts, columns,
// excluded and values the columns named by Column, ExcludeColumn and Value;
// applied says Apply was called, which the unit cannot look into.
func insertKeepsKeys(pks, conflict, returns, columns, excluded, values []string, applied bool) bool {
	if applied {
		return false
	}
	if returnsAll(returns, pks) {
		return true
	}
	for _, pk := range pks {
		if len(columns) > 0 && !slices.ContainsFunc(columns, func(c string) bool { return sameColumn(c, pk) }) ||
			slices.ContainsFunc(excluded, func(c string) bool { return sameColumn(c, pk) }) ||
			slices.ContainsFunc(values, func(c string) bool { return sameColumn(c, pk) }) {
			return false // the row's key is not the object's
		}
	}
	for _, on := range conflict {
		norm := " " + strings.Join(strings.Fields(strings.ToUpper(on)), " ") + " "
		if strings.Contains(norm, " DO NOTHING ") {
			continue // only inserted rows are accepted: they hold the object's key
		}
		// An update of the conflicting row: the object's key is the row's
		// only when the conflict is on the primary key.
		m := conflictTarget.FindStringSubmatch(on)
		if m == nil {
			return false
		}
		var target []string
		for _, c := range strings.Split(m[1], ",") {
			target = append(target, strings.TrimSpace(c))
		}
		if len(target) != len(pks) {
			return false
		}
		for _, pk := range pks {
			if !slices.ContainsFunc(target, func(c string) bool { return sameColumn(c, pk) }) {
				return false
			}
		}
	}
	return true
}

// conflictTarget is the column list of an On("CONFLICT (a, b) ...") text.
var conflictTarget = regexp.MustCompile(`(?is)^\s*CONFLICT\s*\(([^()]*)\)`)

// returnsAll reports whether the Returning texts name every column of pks,
// or *.
func returnsAll(returns, pks []string) bool {
	var items []string
	for _, r := range returns {
		for _, it := range strings.Split(r, ",") {
			items = append(items, strings.TrimSpace(it))
		}
	}
	if slices.Contains(items, "*") {
		return true
	}
	if len(items) == 0 {
		return false
	}
	for _, pk := range pks {
		if !slices.ContainsFunc(items, func(c string) bool { return sameColumn(c, pk) }) {
			return false
		}
	}
	return true
}

// sameColumn reports whether the SQL text c names column col: bare (any
// case) or double-quoted (exactly).
func sameColumn(c, col string) bool {
	c = strings.TrimSpace(c)
	if len(c) >= 2 && c[0] == '"' && c[len(c)-1] == '"' {
		return c[1:len(c)-1] == col
	}
	return strings.EqualFold(c, col)
}
