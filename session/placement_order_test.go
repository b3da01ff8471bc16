package session_test

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// emptySession is a session over four new, empty databases (no tables), with
// the weather choosers.
func emptySession(t *testing.T, name string) (*session.Session, map[session.ShardID]bun.IDB) {
	t.Helper()
	dsns := pgtest.Shared().NewDatabases(context.Background(), t, name)
	shards := map[session.ShardID]bun.IDB{}
	dialect := pgdialect.New() // one dialect shared by every shard
	for i, id := range weather.Shards {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsns[i]))), dialect)
		t.Cleanup(func() { db.Close() })
		shards[id] = db
	}
	s, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, shards
}

// foreignKeysOn returns the foreign keys on a shard as "table->referenced",
// sorted.
func foreignKeysOn(t *testing.T, db bun.IDB) []string {
	t.Helper()
	var fks []string
	err := db.NewRaw(`SELECT conrelid::regclass::text || '->' || confrelid::regclass::text
		FROM pg_catalog.pg_constraint WHERE contype = 'f' ORDER BY 1`).Scan(context.Background(), &fks)
	if err != nil {
		t.Fatalf("read foreign keys: %v", err)
	}
	return fks
}

// TestCreateTablesOrdersByForeignKeys creates the weather tables with
// foreign keys from models given in any order: the order RegisterModel needs
// (the m2m join model first), which failed with `relation "public.tags"
// does not exist` when tables were created in the order given, its reverse,
// and seeded random orders; then DropTables in the same order, without
// Cascade, which dropped referenced tables first.
func TestCreateTablesOrdersByForeignKeys(t *testing.T) {
	ctx := context.Background()
	seed := uint64(1)
	if v := os.Getenv("BUNSHARD_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	registerOrder := []any{(*weather.LocationTag)(nil), (*weather.Location)(nil), (*weather.Report)(nil), (*weather.Station)(nil), (*weather.Tag)(nil)}
	orders := [][]any{registerOrder, slices.Clone(registerOrder)}
	slices.Reverse(orders[1])
	rng := rand.New(rand.NewPCG(seed, seed))
	for range 3 {
		o := slices.Clone(registerOrder)
		rng.Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
		orders = append(orders, o)
	}
	want := []string{"location_tags->tags", "location_tags->weather_locations", "weather_reports->weather_locations"}
	s, shards := emptySession(t, "fkorder")
	s.RegisterModel((*weather.LocationTag)(nil))
	for i, models := range orders {
		if err := s.CreateTables(ctx, models, session.WithForeignKeys()); err != nil {
			t.Fatalf("order %d (seed %d) %T: CreateTables: %v", i, seed, models, err)
		}
		for _, id := range weather.Shards {
			if got := foreignKeysOn(t, shards[id]); !slices.Equal(got, want) {
				t.Errorf("order %d (seed %d): foreign keys on %s = %v; want %v", i, seed, id, got, want)
			}
		}
		if err := s.DropTables(ctx, models); err != nil {
			t.Fatalf("order %d (seed %d) %T: DropTables: %v", i, seed, models, err)
		}
		tables, err := s.Tables(ctx, registerOrder...)
		if err != nil || len(tables) != 0 {
			t.Fatalf("order %d: tables after DropTables = %v, %v; want none", i, tables, err)
		}
	}
}

// Models whose foreign keys form a cycle, and one that refers to itself.
type cycA struct {
	bun.BaseModel `bun:"table:cyc_a"`
	ID            int64 `bun:",pk"`
	BID           int64 `bun:"b_id"`
	B             *cycB `bun:"rel:belongs-to,join:b_id=id"`
}

type cycB struct {
	bun.BaseModel `bun:"table:cyc_b"`
	ID            int64 `bun:",pk"`
	AID           int64 `bun:"a_id"`
	A             *cycA `bun:"rel:belongs-to,join:a_id=id"`
}

type category struct {
	bun.BaseModel `bun:"table:categories"`
	ID            int64 `bun:",pk"`
	ParentID      int64
	Parent        *category `bun:"rel:belongs-to,join:parent_id=id"`
}

// TestCreateTablesForeignKeyCycle: tables whose foreign keys form a cycle
// cannot be created with them in any order; CreateTables says so by model,
// before any DDL. Without foreign keys they are created; a table referring
// to itself is no cycle.
func TestCreateTablesForeignKeyCycle(t *testing.T) {
	ctx := context.Background()
	s, shards := emptySession(t, "fkcycle")
	err := s.CreateTables(ctx, []any{(*category)(nil), (*cycA)(nil), (*cycB)(nil)}, session.WithForeignKeys())
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("CreateTables of a cycle = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "CycA -> CycB -> CycA", "cycle", "WithForeignKeys", "on shard north_america")
	if tables, err := s.Tables(ctx, (*category)(nil), (*cycA)(nil), (*cycB)(nil)); err != nil || len(tables) != 0 {
		t.Errorf("tables after the refused CreateTables = %v, %v; want none", tables, err)
	}
	if err := s.CreateTables(ctx, []any{(*cycA)(nil), (*cycB)(nil)}); err != nil {
		t.Fatalf("CreateTables of a cycle without foreign keys: %v", err)
	}
	if err := s.CreateTables(ctx, []any{(*category)(nil)}, session.WithForeignKeys()); err != nil {
		t.Fatalf("CreateTables of a self-reference: %v", err)
	}
	if got, want := foreignKeysOn(t, shards["asia"]), []string{"categories->categories"}; !slices.Equal(got, want) {
		t.Errorf("foreign keys = %v; want %v", got, want)
	}
}
