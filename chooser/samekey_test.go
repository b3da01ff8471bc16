package chooser_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// User32 is User with an int32 key column: the same ID held in another Go
// type.
type User32 struct {
	bun.BaseModel `bun:"table:users"`

	ID   int32 `bun:",pk"`
	Name string
}

// TestSameKeyAnyType: a key value routes the same with every chooser
// whatever Go type holds it (int32, int64, uint16, a named type, a pointer,
// a Valuer, the field of an int32 or an int64 model), because all of them
// read it through identity.ScalarOf; and SplitValues keeps such values
// together. A string "7" is another key, refused or routed as a string.
func TestSameKeyAnyType(t *testing.T) {
	ctx := context.Background()
	shards := []identity.ShardID{"s0", "s1", "s2", "s3"}
	hash, err := chooser.NewHash("id", shards)
	if err != nil {
		t.Fatal(err)
	}
	jump, err := chooser.NewJump("id", shards...)
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := chooser.NewRanges("id",
		chooser.Range[int64]{From: 0, To: 5, Shard: "s0"},
		chooser.Range[int64]{From: 5, Unbounded: true, Shard: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	valueMap := chooser.NewValueMap("id", map[int64]identity.ShardID{3: "s0", 7: "s2", 1 << 40: "s3"})
	dir := chooser.DirectoryFunc(func(_ context.Context, keys []any) (map[any]identity.ShardID, error) {
		out := map[any]identity.ShardID{}
		for _, k := range keys {
			// The directory sees the canonical int64, whatever the caller passed.
			if n, ok := k.(int64); ok {
				out[k] = shards[n%4]
			}
		}
		return out, nil
	})
	lookup, err := chooser.NewLookup("id", dir)
	if err != nil {
		t.Fatal(err)
	}
	type id16 uint16
	users, users32 := tableOf[User](), tableOf[User32]()
	for _, c := range []struct {
		name string
		c    interface {
			chooser.ShardChooser
			chooser.IdentityChooser
			chooser.Splitter
		}
	}{{"Hash", hash}, {"Jump", jump}, {"Ranges", ranges}, {"ValueMap", valueMap}, {"Lookup", lookup}} {
		for _, n := range []int64{3, 7, 1 << 40} {
			want, err := c.c.ChooseIdentity(ctx, chooser.Key{Table: users, PK: []any{n}})
			if err != nil {
				t.Fatalf("%s: ChooseIdentity(int64 %d): %v", c.name, n, err)
			}
			p := n
			forms := []any{n, &p, uint64(n), sql.NullInt64{Int64: n, Valid: true}}
			if n < 1<<15 {
				forms = append(forms, int32(n), id16(n), int(n))
			}
			for _, x := range forms {
				got, err := c.c.ChooseIdentity(ctx, chooser.Key{Table: users, PK: []any{x}})
				if err != nil || got.String() != want.String() {
					t.Errorf("%s: ChooseIdentity(%T %v) = %v, %v; want %v as for int64", c.name, x, n, got, err, want)
				}
			}
			shard, err := c.c.ChooseShard(ctx, users, &User{ID: n})
			if err != nil || !slices.Equal(want.List(), []identity.ShardID{shard}) {
				t.Errorf("%s: ChooseShard(User{ID: %d}) = %v, %v; want %v", c.name, n, shard, err, want)
			}
			if n < 1<<31 {
				shard32, err := c.c.ChooseShard(ctx, users32, &User32{ID: int32(n)})
				if err != nil || shard32 != shard {
					t.Errorf("%s: ChooseShard(User32{ID: %d}) = %v, %v; want %v as for an int64 field", c.name, n, shard32, err, shard)
				}
			}
		}
		parts, err := c.c.SplitValues(ctx, users, "id", []any{int64(7), int32(7), uint8(7), id16(7)})
		if err != nil {
			t.Fatalf("%s: SplitValues: %v", c.name, err)
		}
		if len(parts) != 1 {
			t.Errorf("%s: SplitValues(7 as int64, int32, uint8, uint16) = %v; want one shard", c.name, parts)
		}
		for id, vs := range parts {
			if len(vs) != 4 {
				t.Errorf("%s: SplitValues: shard %s got %v; want all four values", c.name, id, vs)
			}
		}
		// "7" is not the integer 7: the integer choosers refuse it, Hash
		// and Jump route it as a string (by its bytes).
		got, err := c.c.ChooseIdentity(ctx, chooser.Key{Table: users, PK: []any{"7"}})
		switch c.name {
		case "Hash", "Jump":
			if err != nil {
				t.Errorf(`%s: ChooseIdentity("7"): %v`, c.name, err)
			}
		default:
			if err == nil {
				t.Errorf(`%s: ChooseIdentity("7") = %v; want an error (a string is not an integer key)`, c.name, got)
			}
		}
	}
}
