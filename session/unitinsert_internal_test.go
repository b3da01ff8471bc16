package session

import "testing"

// TestInsertKeepsKeys: when a unit's NewInsert can be sure each object it
// wrote holds its row's primary key (and so may track it). No server.
func TestInsertKeepsKeys(t *testing.T) {
	id := []string{"id"}
	two := []string{"tenant_id", "id"}
	for _, c := range []struct {
		name                                          string
		pks, conflict, returns, columns, excl, values []string
		applied                                       bool
		want                                          bool
	}{
		{name: "plain", pks: id, want: true},
		{name: "Ignore", pks: id, conflict: []string{"CONFLICT DO NOTHING"}, want: true},
		{name: "DO NOTHING on a target", pks: id, conflict: []string{"conflict (email) do   nothing"}, want: true},
		{name: "upsert on the key", pks: id, conflict: []string{"CONFLICT (id) DO UPDATE"}, want: true},
		{name: "upsert on the quoted key", pks: id, conflict: []string{`CONFLICT ("id") DO UPDATE`}, want: true},
		{name: "upsert on a composite key", pks: two, conflict: []string{"CONFLICT (id, tenant_id) DO UPDATE"}, want: true},
		{name: "upsert on part of the key", pks: two, conflict: []string{"CONFLICT (id) DO UPDATE"}},
		{name: "upsert on another column", pks: id, conflict: []string{"CONFLICT (email) DO UPDATE"}},
		{name: "upsert on more columns", pks: id, conflict: []string{"CONFLICT (id, email) DO UPDATE"}},
		{name: "upsert on a constraint", pks: id, conflict: []string{"CONFLICT ON CONSTRAINT t_pkey DO UPDATE"}},
		{name: "upsert on another column returning the key", pks: id, conflict: []string{"CONFLICT (email) DO UPDATE"}, returns: []string{"id"}, want: true},
		{name: "upsert returning *", pks: id, conflict: []string{"CONFLICT (email) DO UPDATE"}, returns: []string{"*"}, want: true},
		{name: "upsert returning part of the key", pks: two, conflict: []string{"CONFLICT (email) DO UPDATE"}, returns: []string{"id, name"}},
		{name: "upsert returning the composite key", pks: two, conflict: []string{"CONFLICT (email) DO UPDATE"}, returns: []string{"id", `"tenant_id"`}, want: true},
		{name: "a quoted name of another case", pks: id, conflict: []string{`CONFLICT ("ID") DO UPDATE`}},
		{name: "Column with the key", pks: id, columns: []string{"id", "name"}, want: true},
		{name: "Column without the key", pks: id, columns: []string{"name"}},
		{name: "Column without the key, returning it", pks: id, columns: []string{"name"}, returns: []string{"id"}, want: true},
		{name: "ExcludeColumn of the key", pks: id, excl: []string{"id"}},
		{name: "ExcludeColumn of another", pks: id, excl: []string{"name"}, want: true},
		{name: "Value of the key", pks: id, values: []string{"id"}},
		{name: "Value of the key, returning it", pks: id, values: []string{"id"}, returns: []string{"id"}, want: true},
		{name: "Returning NULL", pks: id, returns: []string{"NULL"}, want: true},
		{name: "Apply", pks: id, applied: true},
		{name: "Apply returning *", pks: id, applied: true, returns: []string{"*"}},
	} {
		if got := insertKeepsKeys(c.pks, c.conflict, c.returns, c.columns, c.excl, c.values, c.applied); got != c.want {
			t.Errorf("%s: insertKeepsKeys = %v; want %v", c.name, got, c.want)
		}
	}
}
