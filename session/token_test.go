package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"unsafe"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestTokenIsOneWord: a Token costs one pointer per object (it was a
// string and a bool, 24 bytes).
func TestTokenIsOneWord(t *testing.T) {
	if got, want := unsafe.Sizeof(identity.Token{}), unsafe.Sizeof(uintptr(0)); got != want {
		t.Errorf("unsafe.Sizeof(identity.Token{}) = %d; want %d (one pointer)", got, want)
	}
}

// TestTokenAcrossSessions: a Token records its shard by id, so an object
// loaded through one session is written by another to the shard of the
// same id, whatever the other's shard order; a session without that shard
// refuses it by name instead of mapping it to one of its own.
func TestTokenAcrossSessions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := weather.Generate(8, 1, 9)
	a := f.session(t)
	f.seed(t, a, d)
	var loc weather.Location
	if err := a.Get(ctx, &loc, 3); err != nil { // europe
		t.Fatal(err)
	}
	if sh, _ := loc.Shard(); sh != "europe" {
		t.Fatalf("Get(3) loaded from %q; want europe", sh)
	}
	reversed := slices.Clone(weather.Shards)
	slices.Reverse(reversed)
	b, err := session.New(f.shards, weather.ShardChooser, chooser.All, weather.ByContinent, session.WithShardOrder(reversed...))
	if err != nil {
		t.Fatal(err)
	}
	loc.City = "moved by b"
	f.reset()
	if err := b.Update(ctx, &loc); err != nil {
		t.Fatalf("Update through another session = %v", err)
	}
	if got := f.statementsLike("UPDATE"); !slices.Equal(got, []int{0, 0, 1, 0}) {
		t.Errorf("Update through a session of reversed order ran %v UPDATEs per shard %v; want one on europe", got, weather.Shards)
	}
	var check weather.Location
	if err := f.shards["europe"].NewSelect().Model(&check).Where("id = 3").Scan(ctx); err != nil || check.City != "moved by b" {
		t.Errorf("europe's row 3 = %q, %v; want the update", check.City, err)
	}

	// A session with two of the shards: europe is not one of them.
	two := map[session.ShardID]bun.IDB{"north_america": f.shards["north_america"], "asia": f.shards["asia"]}
	c, err := session.New(two, weather.ShardChooser, chooser.All, weather.ByContinent)
	if err != nil {
		t.Fatal(err)
	}
	f.reset()
	err = c.Update(ctx, &loc)
	if !errors.Is(err, session.ErrUnknownShard) {
		t.Fatalf("Update of a europe object through a session without europe = %v; want ErrUnknownShard", err)
	}
	wantIn(t, err, "europe")
	if got := f.perShard(); !slices.Equal(got, []int{0, 0, 0, 0}) {
		t.Errorf("the refused Update ran %v statements per shard; want none", got)
	}
}
