package chooser_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

type Country struct {
	bun.BaseModel `bun:"table:countries"`
	identity.Token

	ID        int64 `bun:",pk"`
	Continent string
}

type City struct {
	bun.BaseModel `bun:"table:cities"`
	identity.Token

	ID        int64 `bun:",pk"`
	CountryID int64
	Country   *Country `bun:"rel:belongs-to,join:country_id=id"`
}

type Street struct {
	bun.BaseModel `bun:"table:streets"`

	ID     int64 `bun:",pk"`
	CityID int64
	City   *City `bun:"rel:belongs-to,join:city_id=id"`
}

// Node points to a node of the same model: a chain of parents.
type Node struct {
	bun.BaseModel `bun:"table:nodes"`
	identity.Token

	ID       int64 `bun:",pk"`
	ParentID int64
	Parent   *Node `bun:"rel:belongs-to,join:parent_id=id"`
}

var tables = pgdialect.New().Tables()

func table[T any]() *schema.Table { return tables.Get(reflect.TypeFor[T]()) }

var byContinent = chooser.NewValueMap("continent", map[string]identity.ShardID{"Asia": "asia", "Europe": "europe"})

func TestFollowParent(t *testing.T) {
	ctx := context.Background()
	follow := chooser.NewFollowParent(byContinent)
	placed := &Country{ID: 1, Continent: "Asia"}
	placed.SetShard("europe") // its token wins over its continent
	japan := &Country{ID: 2, Continent: "Asia"}
	tests := []struct {
		name  string
		table *schema.Table
		obj   any
		want  identity.ShardID
	}{
		{"no parent relation: base", table[Country](), japan, "asia"},
		{"parent with a token", table[City](), &City{Country: placed}, "europe"},
		{"parent without a token: its placement", table[City](), &City{Country: japan}, "asia"},
		{"grandparent, no tokens", table[Street](), &Street{City: &City{Country: japan}}, "asia"},
		{"grandparent with a token", table[Street](), &Street{City: &City{Country: placed}}, "europe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := follow.ChooseShard(ctx, tt.table, tt.obj)
			if err != nil || got != tt.want {
				t.Errorf("ChooseShard(%s) = %q, %v; want %q", tt.table.TypeName, got, err, tt.want)
			}
		})
	}
}

func TestFollowParentErrors(t *testing.T) {
	ctx := context.Background()
	// No parent and no base chooser.
	_, err := chooser.NewFollowParent(nil).ChooseShard(ctx, table[City](), &City{CountryID: 3})
	if err == nil || !strings.Contains(err.Error(), "City has no parent set") {
		t.Errorf("ChooseShard without a parent = %v; want an error saying City has no parent set", err)
	}
	// A named relation that is not belongs-to.
	type Owner struct {
		bun.BaseModel `bun:"table:owners"`
		ID            int64   `bun:",pk"`
		Cities        []*City `bun:"rel:has-many,join:id=country_id"`
	}
	_, err = chooser.NewFollowParent(nil, "Cities").ChooseShard(ctx, table[Owner](), &Owner{})
	if err == nil || !strings.Contains(err.Error(), "Owner.Cities is not a belongs-to relation") {
		t.Errorf("ChooseShard following has-many = %v; want an error naming Owner.Cities", err)
	}
	// A cycle of parents without tokens.
	a, b := &Node{ID: 1}, &Node{ID: 2}
	a.Parent, b.Parent = b, a
	_, err = chooser.NewFollowParent(nil).ChooseShard(ctx, table[Node](), a)
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("ChooseShard on a cycle = %v; want an error about a cycle", err)
	}
	// The base chooser's error comes through, naming the parent.
	_, err = chooser.NewFollowParent(byContinent).ChooseShard(ctx, table[City](), &City{Country: &Country{Continent: "Mars"}})
	if err == nil || !strings.Contains(err.Error(), "Mars") || !strings.Contains(err.Error(), "parent Country of City") {
		t.Errorf("ChooseShard with an unknown continent = %v; want the base chooser's error about Mars, naming the parent", err)
	}
}

func TestReadyMadeChoosersKeepRelationLoadsOnTheParentShard(t *testing.T) {
	ctx := context.Background()
	city := table[City]()
	hash, err := chooser.NewHash("continent", []identity.ShardID{"asia", "europe"})
	if err != nil {
		t.Fatal(err)
	}
	jump, err := chooser.NewJump("continent", "asia", "europe")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []interface {
		chooser.IdentityChooser
		chooser.ExecuteChooser
	}{chooser.All, byContinent, hash, jump, chooser.NewRouters(nil)} {
		got, err := c.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: city, LoadedFrom: "europe"})
		if err != nil || got.String() != "[europe]" {
			t.Errorf("%T.ChooseExecute(LoadedFrom europe) = %v, %v; want [europe]", c, got, err)
		}
		got, err = c.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: city})
		if err != nil || !got.IsAll() {
			t.Errorf("%T.ChooseExecute() = %v, %v; want all", c, got, err)
		}
		got, err = c.ChooseIdentity(ctx, chooser.Key{Table: city, PK: []any{1}, LoadedFrom: "asia"})
		if err != nil || got.String() != "[asia]" {
			t.Errorf("%T.ChooseIdentity(LoadedFrom asia) = %v, %v; want [asia]", c, got, err)
		}
	}
	// A declared criterion still wins over LoadedFrom.
	got, err := byContinent.ChooseExecute(ctx, &chooser.Statement{
		Op: chooser.OpSelect, Table: table[Country](), LoadedFrom: "europe",
		Criteria: []chooser.Criterion{{Column: "continent", Values: []any{"Asia"}}},
	})
	if err != nil || got.String() != "[asia]" {
		t.Errorf("ChooseExecute(continent Asia, LoadedFrom europe) = %v, %v; want [asia]", got, err)
	}
}
