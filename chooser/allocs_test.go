package chooser_test

import (
	"context"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// TestRoutingAllocatesNothing backs the claim in docs/routing.md: routing one
// int64 or one string key allocates nothing, in each of the three roles, for
// the choosers named there (ValueMap included: it allocated once per call when
// it boxed each key to look it up). A chooser that allocates fails here by name.
func TestRoutingAllocatesNothing(t *testing.T) {
	must := func(c routing, err error) routing {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	hash := func(col string) routing { return must(chooser.NewHash(col, chooser.Spread(4096, benchShards...))) }
	jump := func(col string) routing { return must(chooser.NewJump(col, benchShards...)) }
	var idRanges []chooser.Range[int64]
	var slugRanges []chooser.Range[string]
	for i, s := range benchShards {
		idRanges = append(idRanges, chooser.Range[int64]{From: int64(i) << 40, To: int64(i+1) << 40, Shard: s})
		slugRanges = append(slugRanges, chooser.Range[string]{From: string(rune('a' + 3*i)), To: string(rune('a' + 3*i + 3)), Shard: s})
	}
	choosers := []struct {
		name         string
		byID, bySlug routing
		id           int64
		slug         string
	}{
		{"Hash", hash("id"), hash("slug"), 123456789, "acme-corporation"},
		{"Jump", jump("id"), jump("slug"), 123456789, "acme-corporation"},
		{"Ranges", must(chooser.NewRanges("id", idRanges...)), must(chooser.NewRanges("slug", slugRanges...)), 3<<40 + 12345, "hooli"},
		{"ValueMap", chooser.NewValueMap("id", map[int64]identity.ShardID{123456789: benchShards[1], 7: benchShards[0]}),
			chooser.NewValueMap("slug", map[string]identity.ShardID{"acme-corporation": benchShards[2], "hooli": benchShards[0]}),
			123456789, "acme-corporation"},
		{"First(Jump)", chooser.First(jump("id").(*chooser.Jump)), chooser.First(jump("slug").(*chooser.Jump)), 123456789, "acme-corporation"},
	}
	ctx := context.Background()
	users, accounts := tableOf[User](), tableOf[Account]()
	for _, c := range choosers {
		user, account := &User{ID: c.id}, &Account{Slug: c.slug}
		userKey := chooser.Key{Table: users, PK: []any{c.id}}
		accountKey := chooser.Key{Table: accounts, PK: []any{c.slug}}
		userStmt := &chooser.Statement{Op: chooser.OpSelect, Table: users,
			Criteria: []chooser.Criterion{{Column: "id", Values: []any{c.id}}}}
		accountStmt := &chooser.Statement{Op: chooser.OpSelect, Table: accounts,
			Criteria: []chooser.Criterion{{Column: "slug", Values: []any{c.slug}}}}
		roles := []struct {
			role string
			run  func() error
		}{
			{"ChooseShard/int64", func() error { _, err := c.byID.ChooseShard(ctx, users, user); return err }},
			{"ChooseShard/string", func() error { _, err := c.bySlug.ChooseShard(ctx, accounts, account); return err }},
			{"ChooseIdentity/int64", func() error { _, err := c.byID.ChooseIdentity(ctx, userKey); return err }},
			{"ChooseIdentity/string", func() error { _, err := c.bySlug.ChooseIdentity(ctx, accountKey); return err }},
			{"ChooseExecute/int64", func() error { _, err := c.byID.ChooseExecute(ctx, userStmt); return err }},
			{"ChooseExecute/string", func() error { _, err := c.bySlug.ChooseExecute(ctx, accountStmt); return err }},
		}
		for _, r := range roles {
			var err error
			allocs := testing.AllocsPerRun(200, func() {
				if e := r.run(); e != nil {
					err = e
				}
			})
			if err != nil {
				t.Errorf("%s %s: %v", c.name, r.role, err)
			}
			if allocs != 0 {
				t.Errorf("%s %s allocates %.1f times per call; want 0", c.name, r.role, allocs)
			}
		}
	}
}
