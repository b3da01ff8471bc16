package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// bpCountry is keyed by a char(4) code: PostgreSQL stores and returns its
// values blank-padded to 4 ("US" comes back "US  ") and compares them
// without the padding.
type bpCountry struct {
	bun.BaseModel `bun:"table:bp_countries"`
	session.Token

	Code string `bun:",pk,type:char(4)"`
	Name string `bun:",notnull"`
}

// TestBlankPaddedShardKey: a char(n) shard key routes as PostgreSQL
// compares it, without its trailing blanks. The value read back ("US  ")
// finds its row by Get and WhereShardKey on the shard it was placed on by
// "US", and an Update of the loaded object is not a key change. Before,
// the padded value hashed elsewhere: Get and the select found nothing on
// the wrong shard, and Update was refused with ErrShardKeyChanged.
func TestBlankPaddedShardKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c, err := chooser.NewHash("code", chooser.Spread(64, weather.Shards...))
	must(t, err)
	s, err := session.New(f.shards, c, c, c, session.WithShardOrder(weather.Shards...))
	must(t, err)
	must(t, s.CreateTables(ctx, []any{(*bpCountry)(nil)}))
	codes := []string{"US", "FR", "DE", "JP", "BR", "IN", "CN", "ZA"}
	home := map[string]session.ShardID{}
	for _, code := range codes {
		row := &bpCountry{Code: code, Name: "country " + code}
		must(t, s.Insert(ctx, row))
		home[code], _ = session.ShardOf(row)
	}
	padded := 0
	for _, code := range codes {
		var all []*bpCountry
		must(t, s.NewSelect().Model(&all).Where("code = ?", code).Scan(ctx))
		if len(all) != 1 {
			t.Fatalf("select code = %q found %d rows; want 1", code, len(all))
		}
		loaded := all[0]
		if loaded.Code != code {
			padded++
		}
		key := loaded.Code
		for _, k := range []string{key, code, strings.TrimSpace(key) + " "} {
			f.reset()
			var got bpCountry
			if err := s.Get(ctx, &got, k); err != nil {
				t.Errorf("Get(%q) = %v; want %s's row on %s", k, err, code, home[code])
			}
			only(t, f, "Get("+k+")", home[code])
			f.reset()
			var found []bpCountry
			if err := s.NewSelect().Model(&found).WhereShardKey("code", k).Scan(ctx); err != nil || len(found) != 1 {
				t.Errorf("select WhereShardKey(%q) = %d rows, %v; want %s's row", k, len(found), err, code)
			}
			only(t, f, "select WhereShardKey("+k+")", home[code])
		}
		loaded.Name = "renamed " + code
		f.reset()
		if err := s.Update(ctx, loaded); err != nil {
			t.Errorf("Update of %q as loaded (%q) = %v; want it written on %s", code, key, err, home[code])
		} else if errors.Is(err, session.ErrShardKeyChanged) {
			t.Errorf("Update of %q: the padding was taken for a key change", code)
		}
		only(t, f, "Update("+code+")", home[code])
	}
	if padded == 0 {
		t.Fatalf("no code came back blank-padded: the test does not exercise char(n)")
	}
}
