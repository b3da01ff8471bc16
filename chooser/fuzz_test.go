package chooser_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// FuzzHash checks that Hash is deterministic and always lands in range:
// the bucket is in [0, buckets), the shard is the bucket's, and the int64
// and string routes agree with Bucket. Seeds are in testdata/fuzz/FuzzHash.
func FuzzHash(f *testing.F) {
	f.Add(int64(0), "", uint16(1), uint8(1))
	f.Add(int64(-1), "acme", uint16(4096), uint8(7))
	f.Fuzz(func(t *testing.T, id int64, slug string, buckets uint16, shards uint8) {
		if buckets == 0 || shards == 0 {
			t.Skip()
		}
		list := make([]identity.ShardID, shards)
		for i := range list {
			list[i] = identity.ShardID(fmt.Sprintf("s%d", i))
		}
		assign := chooser.Spread(int(buckets), list...)
		byID, err := chooser.NewHash("id", assign)
		if err != nil {
			t.Fatal(err)
		}
		bySlug, err := chooser.NewHash("slug", assign)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, tc := range []struct {
			h     *chooser.Hash
			value any
			route func() (identity.ShardID, error)
		}{
			{byID, id, func() (identity.ShardID, error) { return byID.ChooseShard(ctx, tableOf[User](), &User{ID: id}) }},
			{bySlug, slug, func() (identity.ShardID, error) {
				return bySlug.ChooseShard(ctx, tableOf[Account](), &Account{Slug: slug})
			}},
		} {
			b, err := tc.h.Bucket(tc.value)
			if err != nil || b < 0 || b >= int(buckets) {
				t.Fatalf("Bucket(%#v) = %d, %v; want in [0, %d)", tc.value, b, err, buckets)
			}
			if again, _ := tc.h.Bucket(tc.value); again != b {
				t.Fatalf("Bucket(%#v) = %d, then %d", tc.value, b, again)
			}
			got, err := tc.route()
			if want := assign[b]; got != want || err != nil {
				t.Fatalf("ChooseShard(%#v) = %v, %v; want %v (bucket %d)", tc.value, got, err, want, b)
			}
		}
	})
}

// FuzzJump checks that Jump is deterministic, always lands on one of its
// shards, and that appending a shard either keeps a key or moves it to the
// new shard. Seeds are in testdata/fuzz/FuzzJump.
func FuzzJump(f *testing.F) {
	f.Add(int64(0), "", uint8(1))
	f.Add(int64(1<<62), "tenant-42", uint8(200))
	f.Fuzz(func(t *testing.T, id int64, slug string, n uint8) {
		if n == 0 {
			t.Skip()
		}
		ctx := context.Background()
		users, accounts := tableOf[User](), tableOf[Account]()
		list := shardList(int(n) + 1)
		for _, column := range []string{"id", "slug"} {
			before := mustJump(t, column, list[:n]...)
			after := mustJump(t, column, list...)
			route := func(j *chooser.Jump) identity.ShardID {
				var got identity.ShardID
				var err error
				if column == "id" {
					got, err = j.ChooseShard(ctx, users, &User{ID: id})
				} else {
					got, err = j.ChooseShard(ctx, accounts, &Account{Slug: slug})
				}
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			a := route(before)
			if again := route(before); again != a {
				t.Fatalf("%s: ChooseShard gave %s, then %s", column, a, again)
			}
			var inRange bool
			for _, s := range list[:n] {
				inRange = inRange || s == a
			}
			if !inRange {
				t.Fatalf("%s: ChooseShard = %s; want one of %v", column, a, list[:n])
			}
			if b := route(after); b != a && b != list[n] {
				t.Fatalf("%s: adding shard %s moved a key from %s to %s", column, list[n], a, b)
			}
		}
	})
}
