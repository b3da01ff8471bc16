package session_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// tkTenant is a tenant row keyed by an int64 tenant id, the shard key of
// every chooser in TestTypedShardKeys.
type tkTenant struct {
	bun.BaseModel `bun:"table:tk_tenants"`
	session.Token

	TenantID int64  `bun:",pk"`
	Name     string `bun:",notnull"`
}

type tenantID int64

// tkChoosers returns every ready-made chooser that routes on one column,
// on tk_tenants.tenant_id over the fixture's shards, and the tenant ids the
// tests use: tenant i is in bucket i%4 of a small identity layout, so that
// FromID routes it to shard i%4, and so do the others.
func tkChoosers(t *testing.T) (map[string]any, []int64) {
	t.Helper()
	layout := identity.Layout{Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TimeBits: 1, BucketBits: 2, SeqBits: 12}
	var ids []int64
	home := map[int64]identity.ShardID{}
	for i := range 6 {
		id, err := layout.Encode(layout.Epoch, i%4, 1001+i)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		home[id] = weather.Shards[i%4]
	}
	must := func(c any, err error) any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sh := weather.Shards
	dir := chooser.DirectoryFunc(func(_ context.Context, keys []any) (map[any]identity.ShardID, error) {
		out := map[any]identity.ShardID{}
		for _, k := range keys {
			if n, ok := k.(int64); ok {
				if id, ok := home[n]; ok {
					out[k] = id
				}
			}
		}
		return out, nil
	})
	return map[string]any{
		"Hash": must(chooser.NewHash("tenant_id", chooser.Spread(64, sh...))),
		"Jump": must(chooser.NewJump("tenant_id", sh...)),
		"Ranges": must(chooser.NewRanges("tenant_id",
			chooser.Range[int64]{From: 0, To: 4096, Shard: sh[0]},
			chooser.Range[int64]{From: 4096, To: 8192, Shard: sh[1]},
			chooser.Range[int64]{From: 8192, To: 12288, Shard: sh[2]},
			chooser.Range[int64]{From: 12288, Unbounded: true, Shard: sh[3]})),
		"ValueMap": chooser.NewValueMap("tenant_id", home),
		"Lookup":   must(chooser.NewLookup("tenant_id", dir)),
		"FromID":   must(chooser.NewFromID("tenant_id", layout, sh)),
	}, ids
}

// spellings returns the ways a caller may name tenant id n: every one must
// route and match like int64(n).
func spellings(n int64) []any {
	v := n
	return []any{
		n, int(n), int32(n), uint16(n), uint64(n), tenantID(n), &v,
		strconv.FormatInt(n, 10), json.Number(strconv.FormatInt(n, 10)),
		float64(n), sql.NullInt64{Int64: n, Valid: true},
	}
}

// TestTypedShardKeys guards that key values are converted to the column's
// Go type before any chooser sees them: a tenant id given as "1001", 1001,
// int32(1001) or 1001.0 routes to the tenant's shard and finds its row,
// with every ready-made chooser, in Get, selects and statement-form writes.
// Before, "1001" hashed as a string and went to another shard, where it
// silently found nothing; and a value that does not convert without loss
// (Get(&row, 1001.9)) loaded row 1001.
func TestTypedShardKeys(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.session(t).CreateTables(ctx, []any{(*tkTenant)(nil)}); err != nil {
		t.Fatal(err)
	}
	choosers, ids := tkChoosers(t)
	for _, name := range []string{"Hash", "Jump", "Ranges", "ValueMap", "Lookup", "FromID"} {
		c := choosers[name]
		t.Run(name, func(t *testing.T) {
			for _, db := range f.shards {
				if _, err := db.NewTruncateTable().Model((*tkTenant)(nil)).Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
			s, err := session.New(f.shards, c.(chooser.ShardChooser), c.(chooser.IdentityChooser), c.(chooser.ExecuteChooser),
				session.WithShardOrder(weather.Shards...))
			if err != nil {
				t.Fatal(err)
			}
			rows := make([]*tkTenant, len(ids))
			for i, id := range ids {
				rows[i] = &tkTenant{TenantID: id, Name: fmt.Sprint("tenant ", id)}
			}
			if err := s.Insert(ctx, &rows); err != nil {
				t.Fatalf("Insert = %v", err)
			}
			for _, want := range rows {
				home, _ := session.ShardOf(want)
				for _, key := range spellings(want.TenantID) {
					what := fmt.Sprintf("key %v (%T)", key, key)
					f.reset()
					var got tkTenant
					if err := s.Get(ctx, &got, key); err != nil {
						t.Errorf("Get(%s) = %v; want tenant %d", what, err, want.TenantID)
					} else if sh, _ := session.ShardOf(&got); got.Name != want.Name || sh != home {
						t.Errorf("Get(%s) = %q on %s; want %q on %s", what, got.Name, sh, want.Name, home)
					}
					only(t, f, "Get("+what+")", home)

					f.reset()
					var found []tkTenant
					if err := s.NewSelect().Model(&found).WhereShardKey("tenant_id", key).Scan(ctx); err != nil {
						t.Errorf("select WhereShardKey(%s) = %v", what, err)
					} else if len(found) != 1 || found[0].Name != want.Name {
						t.Errorf("select WhereShardKey(%s) = %v; want tenant %d", what, found, want.TenantID)
					}
					only(t, f, "select WhereShardKey("+what+")", home)

					f.reset()
					res, err := s.NewUpdate().Model((*tkTenant)(nil)).Set("name = name").WhereShardKey("tenant_id", key).Exec(ctx)
					if err != nil || res.RowsAffected != 1 || res.ByShard[home] != 1 {
						t.Errorf("update WhereShardKey(%s) = %+v, %v; want 1 row on %s", what, res, err, home)
					}
					only(t, f, "update WhereShardKey("+what+")", home)
				}
			}
			// An IN list of mixed spellings finds every tenant.
			var mixed []any
			for i, id := range ids {
				sp := spellings(id)
				mixed = append(mixed, sp[i%len(sp)], sp[(i+7)%len(sp)])
			}
			n, err := s.NewSelect().Model((*tkTenant)(nil)).WhereShardKey("tenant_id", mixed...).Count(ctx)
			if err != nil || n != len(ids) {
				t.Errorf("count WhereShardKey(%v) = %d, %v; want %d", mixed, n, err, len(ids))
			}
			lossy(t, f, s)
		})
	}
	// With choosers that do not read the key (every shard is asked), a
	// lossy key is refused all the same: before, Get(&row, 1001.9) truncated
	// it and loaded row 1001, and WhereShardKey(1001.9) matched nothing.
	t.Run("chooser.All", func(t *testing.T) {
		s, err := session.New(f.shards, choosers["Hash"].(chooser.ShardChooser), chooser.All, chooser.All,
			session.WithShardOrder(weather.Shards...))
		if err != nil {
			t.Fatal(err)
		}
		var row tkTenant
		if err := s.Get(ctx, &row, 1001.0); err != nil || row.TenantID != 1001 {
			t.Errorf("Get(1001.0) = %d, %v; want row 1001", row.TenantID, err)
		}
		lossy(t, f, s)
		lossy(t, f, s.Using(weather.Shards[0]))
	})
}

// only fails unless the statements since reset ran on shard id alone.
func only(t *testing.T, f *fixture, what string, id session.ShardID) {
	t.Helper()
	for i, n := range f.perShard() {
		if (weather.Shards[i] == id) != (n > 0) {
			t.Errorf("%s ran %v statements per shard; want them on %s only", what, f.perShard(), id)
			return
		}
	}
}

// lossy checks that key values that do not convert to int64 without loss
// are ErrInvalidArgument naming the model, column, type and value, and
// that nothing is sent.
func lossy(t *testing.T, f *fixture, s *session.Session) {
	t.Helper()
	ctx := context.Background()
	var nilPtr *int64
	for _, tt := range []struct {
		key  any
		name string // how the error shows the value
	}{
		{1001.9, "1001.9"},
		{float32(0.5), "0.5"},
		{math.NaN(), "NaN"},
		{float64(1<<53 + 2), "9.007199254740994e+15"},
		{"1001x", `"1001x"`},
		{"", `""`},
		{"1001.0", `"1001.0"`},
		{"99999999999999999999", `"99999999999999999999"`},
		{uint64(1 << 63), "9223372036854775808"},
		{true, "true"},
		{[]int64{1001}, "[1001]"},
		{nil, "<nil>"},
		{nilPtr, "<nil>"},
		{sql.NullInt64{}, "{0 false}"},
	} {
		what := fmt.Sprintf("%v (%T)", tt.key, tt.key)
		f.reset()
		var row tkTenant
		errs := map[string]error{"Get": s.Get(ctx, &row, tt.key)}
		errs["select"] = s.NewSelect().Model(&[]tkTenant{}).WhereShardKey("tenant_id", tt.key).Scan(ctx)
		_, errs["delete"] = s.NewDelete().Model((*tkTenant)(nil)).WhereShardKey("tenant_id", int64(1001), tt.key).Exec(ctx)
		for op, err := range errs {
			if !errors.Is(err, session.ErrInvalidArgument) {
				t.Errorf("%s with key %s = %v; want ErrInvalidArgument", op, what, err)
				continue
			}
			wantIn(t, err, "TkTenant.tenant_id", "int64", tt.name)
		}
		if c := f.perShard(); slices.ContainsFunc(c, func(n int) bool { return n > 0 }) {
			t.Errorf("key %s ran %v statements per shard; want none", what, c)
		}
	}
}
