package session

import (
	"database/sql/driver"
	"reflect"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

type wkProject struct {
	bun.BaseModel `bun:"table:wk_projects,alias:p"`
	ID            int64 `bun:",pk"`
	TenantID      int64
	Slug          string
}

type wkValuer int64

func (v wkValuer) Value() (driver.Value, error) { return int64(v) + 1, nil }

// TestParseWhereKey: the Where texts and arguments read as a shard-key
// condition, and those that are not, with no database.
func TestParseWhereKey(t *testing.T) {
	table := pgdialect.New().Tables().Get(reflect.TypeFor[wkProject]())
	cases := []struct {
		query string
		arg   any
		col   string // "" when the Where is not one of the forms
		vals  []any  // nil when its argument is no key value
	}{
		{"tenant_id = ?", int64(3), "tenant_id", []any{int64(3)}},
		{"  TENANT_ID=? ", 3, "tenant_id", []any{3}},
		{"tenant_id IN (?)", bun.List([]int64{1, 2}), "tenant_id", []any{int64(1), int64(2)}},
		//lint:ignore SA1019 the deprecated form, which apps still write
		{"tenant_id in ( ? )", bun.In([]string{"a"}), "tenant_id", []any{"a"}},
		{"?TableAlias.tenant_id = ?", 3, "tenant_id", []any{3}},
		{"p.tenant_id = ?", 3, "tenant_id", []any{3}},
		{`"p"."tenant_id" = ?`, 3, "tenant_id", []any{3}},
		{`"tenant_id" = ?`, 3, "tenant_id", []any{3}},
		{"slug = ?", "x", "slug", []any{"x"}},
		{`"Tenant_id" = ?`, 3, "", nil}, // a quoted identifier is case-sensitive
		{"q.tenant_id = ?", 3, "", nil}, // another table
		{"wk_projects.tenant_id = ?", 3, "", nil},
		{"tenant_id = ? OR true", 3, "", nil},
		{"tenant_id = ? AND id = 1", 3, "", nil},
		{"abs(tenant_id) = ?", 3, "", nil},
		{"tenant_id IN ?", bun.List([]int64{1}), "", nil},
		{"tenant_id = (?)", 3, "", nil},
		{"tenant_id >= ?", 3, "", nil},
		{"tenant_id = ?0", 3, "", nil},
		{"nope = ?", 3, "", nil},
		{"tenant_id = ?", bun.Safe("(SELECT 3)"), "tenant_id", nil},
		{"tenant_id = ?", wkValuer(3), "tenant_id", nil},
		{"tenant_id = ?", nil, "tenant_id", nil},
		{"tenant_id = ?", []int64{3}, "tenant_id", nil},
		{"tenant_id = ?", bun.List([]int64{3}), "tenant_id", nil},
		{"tenant_id IN (?)", 3, "tenant_id", nil},
		{"tenant_id IN (?)", bun.List([]int64{}), "tenant_id", nil},
		{"tenant_id IN (?)", bun.List([]any{int64(1), bun.Safe("2")}), "tenant_id", nil},
		{"tenant_id IN (?)", bun.List([]wkValuer{1}), "tenant_id", nil},
		{"tenant_id IN (?)", bun.Tuple([]int64{1}), "tenant_id", nil},
	}
	for _, c := range cases {
		k, ok := parseWhereKey(table, c.query, []any{c.arg})
		if ok != (c.col != "") || ok && k.column != c.col {
			t.Errorf("parseWhereKey(%q) = %+v, %v; want column %q", c.query, k, ok, c.col)
			continue
		}
		if !ok {
			continue
		}
		vals, vok := k.values()
		if vok != (c.vals != nil) || !reflect.DeepEqual(vals, c.vals) {
			t.Errorf("Where(%q, %#v): values = %#v, %v; want %#v", c.query, c.arg, vals, vok, c.vals)
		}
	}
	if _, ok := parseWhereKey(table, "tenant_id = ?", []any{1, 2}); ok {
		t.Error("parseWhereKey with two arguments: ok; want not a key condition")
	}
}
