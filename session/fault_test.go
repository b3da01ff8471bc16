package session_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestDeadShard stops one of two servers: statements that need it fail with
// a *ShardError naming it, statements that don't still work, nothing written
// to the live shard is lost, and after a restart everything works again.
func TestDeadShard(t *testing.T) {
	ctx := context.Background()
	set, err := pgtest.Start(2) // private servers: this test stops one
	if err != nil {
		t.Fatalf("start servers: %v", err)
	}
	defer set.Close()
	if set.External() {
		t.Skip("fault injection needs servers the harness started, not " + pgtest.EnvVar)
	}
	dialect := pgdialect.New()
	shards := map[session.ShardID]bun.IDB{}
	ids := []session.ShardID{"asia", "europe"}
	for i, id := range ids {
		sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(set.Server(i).DSN("postgres")),
			pgdriver.WithDialTimeout(2*time.Second)))
		db := bun.NewDB(sqldb, dialect)
		defer db.Close()
		weather.Register(db)
		if err := weather.CreateSchema(ctx, db); err != nil {
			t.Fatal(err)
		}
		shards[id] = db
	}
	s, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent)
	if err != nil {
		t.Fatal(err)
	}
	locs := []*weather.Location{{ID: 1, Continent: "Asia", City: "Tokyo"}, {ID: 2, Continent: "Europe", City: "Oslo"}}
	if err := s.Insert(ctx, &locs); err != nil {
		t.Fatal(err)
	}

	dead := set.Server(1) // europe
	if err := dead.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	isEurope := func(t *testing.T, err error) {
		t.Helper()
		se, ok := errors.AsType[*session.ShardError](err)
		if !ok || se.Shard != "europe" {
			t.Fatalf("err = %v; want a *ShardError for shard europe", err)
		}
	}

	var all []weather.Location
	isEurope(t, s.NewSelect().Model(&all).Scan(ctx))
	isEurope(t, s.Ping(ctx))
	var got weather.Location
	isEurope(t, s.Get(ctx, &got, 1)) // the key might be on europe too: no guess

	// Partial results, on request: asia's rows and an error naming europe.
	all = nil
	err = s.NewSelect().Model(&all).Options(session.AllowPartial()).Scan(ctx)
	pe, ok := errors.AsType[*session.PartialError](err)
	if !ok || len(pe.Errors) != 1 || len(pe.Shards) != 1 || pe.Shards[0] != "asia" {
		t.Fatalf("partial Scan = %v; want a *PartialError with europe failed and asia answered", err)
	}
	isEurope(t, err)
	if len(all) != 1 || all[0].City != "Tokyo" {
		t.Errorf("partial rows = %+v; want asia's Tokyo", all)
	}
	n, err := s.NewSelect().Model((*weather.Location)(nil)).Options(session.AllowPartial()).Count(ctx)
	if _, ok := errors.AsType[*session.PartialError](err); !ok || n != 1 {
		t.Errorf("partial Count = %d, %v; want 1 and a *PartialError", n, err)
	}

	// The live shard still serves what only needs it.
	var asia []weather.Location
	if err := s.NewSelect().Model(&asia).WhereShardKey("continent", "Asia").Scan(ctx); err != nil || len(asia) != 1 {
		t.Fatalf("select on live shard = %v, %v", asia, err)
	}
	more := []*weather.Location{{ID: 3, Continent: "Asia", City: "Seoul"}, {ID: 4, Continent: "Europe", City: "Rome"}}
	err = s.Insert(ctx, &more)
	isEurope(t, err)
	wantIn(t, err, "committed on shards [asia]")
	if _, ok := more[0].Shard(); !ok {
		t.Error("the object written to asia has no token")
	}
	if _, ok := more[1].Shard(); ok {
		t.Error("the object that failed on europe got a token")
	}

	if err := dead.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Connections in the pool died with the server; the pool reconnects.
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(ctx) != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	all = nil
	if err := s.NewSelect().Model(&all).Order("id").Scan(ctx); err != nil {
		t.Fatalf("select after restart = %v", err)
	}
	if len(all) != 3 || all[0].City != "Tokyo" || all[1].City != "Oslo" || all[2].City != "Seoul" {
		t.Errorf("rows after restart = %+v; want Tokyo, Oslo, Seoul", all)
	}
}
