package chooser_test

import (
	"context"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// routing is every role a single-column chooser plays.
type routing interface {
	chooser.ShardChooser
	chooser.IdentityChooser
	chooser.ExecuteChooser
}

// benchRoles measures the three roles for one int64 key (User.id) and one
// string key (Account.slug). Each must report 0 allocs/op.
func benchRoles(b *testing.B, byID, bySlug routing, id int64, slug string) {
	ctx := context.Background()
	users, accounts := tableOf[User](), tableOf[Account]()
	user, account := &User{ID: id}, &Account{Slug: slug}
	userKey := chooser.Key{Table: users, PK: []any{id}}
	accountKey := chooser.Key{Table: accounts, PK: []any{slug}}
	userStmt := &chooser.Statement{Op: chooser.OpSelect, Table: users,
		Criteria: []chooser.Criterion{{Column: "id", Values: []any{id}}}}
	accountStmt := &chooser.Statement{Op: chooser.OpSelect, Table: accounts,
		Criteria: []chooser.Criterion{{Column: "slug", Values: []any{slug}}}}

	b.Run("ChooseShard/int64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := byID.ChooseShard(ctx, users, user); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ChooseShard/string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bySlug.ChooseShard(ctx, accounts, account); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ChooseIdentity/int64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := byID.ChooseIdentity(ctx, userKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ChooseIdentity/string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bySlug.ChooseIdentity(ctx, accountKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ChooseExecute/int64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := byID.ChooseExecute(ctx, userStmt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ChooseExecute/string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bySlug.ChooseExecute(ctx, accountStmt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var benchShards = []identity.ShardID{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"}

func BenchmarkHash(b *testing.B) {
	byID, err := chooser.NewHash("id", chooser.Spread(4096, benchShards...))
	if err != nil {
		b.Fatal(err)
	}
	bySlug, err := chooser.NewHash("slug", chooser.Spread(4096, benchShards...))
	if err != nil {
		b.Fatal(err)
	}
	benchRoles(b, byID, bySlug, 123456789, "acme-corporation")
}

func BenchmarkJump(b *testing.B) {
	byID, err := chooser.NewJump("id", benchShards...)
	if err != nil {
		b.Fatal(err)
	}
	bySlug, err := chooser.NewJump("slug", benchShards...)
	if err != nil {
		b.Fatal(err)
	}
	benchRoles(b, byID, bySlug, 123456789, "acme-corporation")
}

func BenchmarkRanges(b *testing.B) {
	var idRanges []chooser.Range[int64]
	var slugRanges []chooser.Range[string]
	for i, s := range benchShards {
		idRanges = append(idRanges, chooser.Range[int64]{From: int64(i) << 40, To: int64(i+1) << 40, Shard: s})
		slugRanges = append(slugRanges, chooser.Range[string]{From: string(rune('a' + 3*i)), To: string(rune('a' + 3*i + 3)), Shard: s})
	}
	byID, err := chooser.NewRanges("id", idRanges...)
	if err != nil {
		b.Fatal(err)
	}
	bySlug, err := chooser.NewRanges("slug", slugRanges...)
	if err != nil {
		b.Fatal(err)
	}
	benchRoles(b, byID, bySlug, 3<<40+12345, "hooli")
}

func BenchmarkLookupHit(b *testing.B) {
	dir := chooser.DirectoryFunc(func(_ context.Context, keys []any) (map[any]identity.ShardID, error) {
		m := make(map[any]identity.ShardID)
		for _, k := range keys {
			m[k] = "s3"
		}
		return m, nil
	})
	byID, err := chooser.NewLookup("id", dir)
	if err != nil {
		b.Fatal(err)
	}
	bySlug, err := chooser.NewLookup("slug", dir)
	if err != nil {
		b.Fatal(err)
	}
	benchRoles(b, byID, bySlug, 123456789, "acme-corporation")
}

func BenchmarkRoundRobin(b *testing.B) {
	rr, err := chooser.NewRoundRobin(benchShards...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, users, user := context.Background(), tableOf[User](), &User{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rr.ChooseShard(ctx, users, user); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkFirst(b *testing.B) {
	jump := func(col string) *chooser.Jump {
		j, err := chooser.NewJump(col, benchShards...)
		if err != nil {
			b.Fatal(err)
		}
		return j
	}
	benchRoles(b, chooser.First(jump("id")), chooser.First(jump("slug")), 123456789, "acme-corporation")
}
