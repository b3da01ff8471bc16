package loader

import (
	"database/sql"
	"reflect"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/schema"
)

type parent struct {
	bun.BaseModel `bun:"table:parents"`

	ID       int64     `bun:",pk"`
	Code     string    `bun:",unique"`
	Children []*child  `bun:"rel:has-many,join:id=parent_id"`
	ByCode   []child   `bun:"rel:has-many,join:code=parent_code"`
	Pair     []pairRow `bun:"rel:has-many,join:id=a,join:code=b"`
	Bad      *[]child  `bun:"rel:has-many,join:id=parent_id"`
}

type child struct {
	bun.BaseModel `bun:"table:children"`

	ID         int64  `bun:",pk"`
	ParentID   *int64 // nullable foreign key
	ParentCode string
}

type pairRow struct {
	bun.BaseModel `bun:"table:pairs"`

	A int64  `bun:",pk"`
	B string `bun:",pk"`
}

// db builds queries without connecting (sql.OpenDB does not dial).
func db() *bun.DB {
	return bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN("postgres://x@127.0.0.1:1/x"))), pgdialect.New())
}

func tableOf[T any](d *bun.DB) *schema.Table { return d.Table(reflect.TypeFor[T]()) }

func TestCheckField(t *testing.T) {
	d := db()
	pt := tableOf[parent](d)
	for name, ok := range map[string]bool{"Children": true, "ByCode": true, "Pair": true, "Bad": false} {
		err := checkField(pt, pt.Relations[name])
		if (err == nil) != ok {
			t.Errorf("checkField(%s) = %v; want ok %v", name, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "Parent.Bad has type *[]loader.child") {
			t.Errorf("checkField(%s) = %q; want it to name the field and its type", name, err)
		}
	}
}

func TestKeyIndexAndWhereIn(t *testing.T) {
	d := db()
	pt := tableOf[parent](d)
	one := int64(1)
	parents := []reflect.Value{
		reflect.ValueOf(&parent{ID: 1, Code: "a"}).Elem(),
		reflect.ValueOf(&parent{ID: 2, Code: "b"}).Elem(),
		reflect.ValueOf(&parent{ID: 1, Code: "a"}).Elem(), // the same key again: one IN entry, two parents
	}
	tests := []struct {
		rel      string
		ints     bool
		where    string
		child    any
		matchesN int
	}{
		{"Children", true, `WHERE ("child"."parent_id" IN (1, 2))`, &child{ParentID: &one}, 2},
		{"ByCode", false, `WHERE ("child"."parent_code" IN ('a', 'b'))`, &child{ParentCode: "b"}, 1},
		{"Pair", false, `WHERE (("pair_row"."a", "pair_row"."b") IN ((1, 'a'), (2, 'b')))`, &pairRow{A: 1, B: "a"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			rel := pt.Relations[tt.rel]
			ki := newKeyIndex(rel.BasePKs, rel.JoinPKs, parents, []int{0, 1, 2})
			if ki.ints != tt.ints {
				t.Errorf("ints mode = %v; want %v", ki.ints, tt.ints)
			}
			dst := reflect.New(reflect.SliceOf(reflect.PointerTo(rel.JoinTable.Type)))
			sql := whereIn(d.NewSelect().Model(dst.Interface()), rel.JoinPKs, ki).String()
			if !strings.HasSuffix(sql, tt.where) {
				t.Errorf("SQL = %s; want it to end with %s", sql, tt.where)
			}
			cv := reflect.ValueOf(tt.child).Elem()
			var got []int
			if ki.ints {
				got = ki.byInt[ki.childInt(rel.JoinTable.Type, cv.Addr().UnsafePointer())]
			} else {
				got = ki.byAny[ki.keyOf(rel.JoinPKs, cv).v]
			}
			if len(got) != tt.matchesN {
				t.Errorf("parents of %+v = %v; want %d of them", tt.child, got, tt.matchesN)
			}
		})
	}
}

func TestKeyIndexSkipsNullKeys(t *testing.T) {
	d := db()
	ct := tableOf[child](d)
	// child has no relation of its own; index children by their nullable
	// parent_id as parents of a belongs-to would be.
	f := ct.FieldMap["parent_id"]
	one := int64(1)
	kids := []reflect.Value{
		reflect.ValueOf(&child{ID: 1, ParentID: &one}).Elem(),
		reflect.ValueOf(&child{ID: 2}).Elem(), // NULL: no key
	}
	ki := newKeyIndex([]*schema.Field{f}, tableOf[parent](d).PKs, kids, []int{0, 1})
	if got := ki.members(); len(got) != 1 || got[0] != 0 {
		t.Errorf("members = %v; want [0]: a NULL key takes no part", got)
	}
}
