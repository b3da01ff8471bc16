package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	bunmigrate "github.com/uptrace/bun/migrate"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/migrate"
)

type Tag struct {
	ID int64 `bun:",pk"`
}

type Post struct {
	ID int64 `bun:",pk"`
}

// tagsOnS0S1 is a MigrateRouter that puts tags on s0 and s1 only and has
// no opinion on anything else.
var tagsOnS0S1 = chooser.MigrateRouterFunc(func(_ context.Context, id identity.ShardID, t *schema.Table) chooser.Verdict {
	if t.TypeName == "Tag" {
		return chooser.VerdictOf(id == "s0" || id == "s1")
	}
	return chooser.Abstain
})

// TestMigrateScoped: a migration limited with OnShards runs on those shards
// only, one limited with ForModels runs where the router allows its model;
// elsewhere both are recorded as applied without running, so every shard's
// status is "applied"; Rollback runs their downs only where their ups ran.
// A Go migration learns its shard from the ctx.
func TestMigrateScoped(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ms := bunmigrate.NewMigrations()
	registerAccounts(ms)
	ms.Add(sqlMigration("20260101000010", "regional", `CREATE TABLE regional (id int)`, `DROP TABLE regional`))
	ms.Add(sqlMigration("20260101000011", "tags", `CREATE TABLE tags (id bigint PRIMARY KEY)`, `DROP TABLE tags`))
	ms.Add(bunmigrate.Migration{
		Name: "20260101000012", Comment: "whoami",
		Up: func(ctx context.Context, m *bunmigrate.Migrator, _ *bunmigrate.Migration) error {
			id, ok := migrate.ShardOf(ctx)
			if !ok {
				return errors.New("ShardOf: no shard in the migration's ctx")
			}
			_, err := m.DB().NewRaw(`CREATE TABLE whoami AS SELECT ?::text AS shard`, string(id)).Exec(ctx)
			return err
		},
		Down: func(ctx context.Context, m *bunmigrate.Migrator, _ *bunmigrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, `DROP TABLE whoami`)
			return err
		},
	})
	all := []string{"20260101000001", "20260101000010", "20260101000011", "20260101000012"}
	m, err := migrate.New(f.dbs, ms,
		migrate.WithRouter(tagsOnS0S1),
		migrate.WithScope("20260101000010", migrate.OnShards("s1", "s3")),
		migrate.WithScope("20260101000011_tags", migrate.ForModels((*Tag)(nil))),
	)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	report, err := m.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	wantSkipped := map[identity.ShardID][]string{
		"s0": {"20260101000010"},
		"s1": nil,
		"s2": {"20260101000010", "20260101000011"},
		"s3": {"20260101000011"},
	}
	wantTables := map[identity.ShardID][]string{
		"s0": {"accounts", "tags", "whoami"},
		"s1": {"accounts", "regional", "tags", "whoami"},
		"s2": {"accounts", "whoami"},
		"s3": {"accounts", "regional", "whoami"},
	}
	for _, id := range shardIDs {
		res, _ := report.Shard(id)
		if !slices.Equal(migrationNames(res.Migrations), all) || !slices.Equal(res.Skipped, wantSkipped[id]) {
			t.Errorf("Migrate on %s: applied %v, skipped %v; want %v, skipped %v", id, migrationNames(res.Migrations), res.Skipped, all, wantSkipped[id])
		}
		if got := f.tables(t, id, "accounts", "regional", "tags", "whoami"); !slices.Equal(got, wantTables[id]) {
			t.Errorf("tables on %s = %v; want %v", id, got, wantTables[id])
		}
		var who string
		if err := f.dbs[id].NewRaw(`SELECT shard FROM whoami`).Scan(ctx, &who); err != nil || who != string(id) {
			t.Errorf("whoami on %s = %q, %v; want %q", id, who, err, id)
		}
	}
	checkStatus(t, "after Migrate", m, map[identity.ShardID][3]any{
		"s0": {"applied", all, []string{}},
		"s1": {"applied", all, []string{}},
		"s2": {"applied", all, []string{}},
		"s3": {"applied", all, []string{}},
	})

	// A down run where the up did not would fail (DROP TABLE of a table
	// that is not there).
	report, err = m.Rollback(ctx)
	if err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	for _, id := range shardIDs {
		res, _ := report.Shard(id)
		// Rollback reports in the order it ran: newest first.
		skipped, rolled := slices.Clone(wantSkipped[id]), slices.Clone(all)
		slices.Reverse(skipped)
		slices.Reverse(rolled)
		if !slices.Equal(res.Skipped, skipped) || !slices.Equal(migrationNames(res.Migrations), rolled) {
			t.Errorf("Rollback on %s: rolled back %v, skipped %v; want %v, skipped %v", id, migrationNames(res.Migrations), res.Skipped, rolled, skipped)
		}
		if got := f.tables(t, id, "accounts", "regional", "tags", "whoami"); len(got) != 0 {
			t.Errorf("after Rollback: tables on %s = %v; want none", id, got)
		}
	}
}

// TestMigrateForModelsAmbiguous: a migration for two models, on a shard
// where the router allows one and denies the other, fails there with
// ErrAmbiguous and is not recorded; shards that allow both run it.
func TestMigrateForModelsAmbiguous(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ms := bunmigrate.NewMigrations()
	registerAccounts(ms)
	ms.Add(sqlMigration("20260101000020", "tagged_posts", `CREATE TABLE tagged (id int)`, `DROP TABLE tagged`))
	m, err := migrate.New(f.dbs, ms, migrate.WithRouter(tagsOnS0S1),
		migrate.WithScope("20260101000020", migrate.ForModels((*Tag)(nil), (*Post)(nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	report, err := m.Migrate(ctx)
	if !errors.Is(err, migrate.ErrAmbiguous) {
		t.Fatalf("Migrate = %v; want ErrAmbiguous", err)
	}
	wantIn(t, err, "shard s2", "shard s3", "20260101000020", "allows [Post]", "denies [Tag]")
	if got := report.Failed(); !slices.Equal(got, []identity.ShardID{"s2", "s3"}) {
		t.Errorf("Failed() = %v; want [s2 s3]", got)
	}
	for _, id := range shardIDs {
		want := []string{"20260101000001@1", "20260101000020@1"}
		if id == "s2" || id == "s3" {
			want = want[:1]
			if res, _ := report.Shard(id); res.Failed != "20260101000020" {
				t.Errorf("report on %s: Failed = %q; want 20260101000020", id, res.Failed)
			}
		}
		if got := f.recorded(t, id); !slices.Equal(got, want) {
			t.Errorf("bun_migrations on %s = %v; want %v", id, got, want)
		}
	}
}

// otherShards is a Shards whose handles are whatever the test gives.
type otherShards map[identity.ShardID]bun.IDB

func (o otherShards) Shards() []identity.ShardID {
	var ids []identity.ShardID
	for id := range o {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (o otherShards) DB(id identity.ShardID) (bun.IDB, error) {
	if db, ok := o[id]; ok {
		return db, nil
	}
	return nil, fmt.Errorf("no shard %s", id)
}

// TestNewInvalid: New refuses bad input by name, before sending anything
// (the databases here point at no server).
func TestNewInvalid(t *testing.T) {
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN("postgres://nobody@127.0.0.1:1/none?sslmode=disable"))), pgdialect.New())
	t.Cleanup(func() { db.Close() })
	dbs := migrate.DBs{"s0": db, "s1": db}
	ms := bunmigrate.NewMigrations()
	ms.Add(sqlMigration("20260101000001", "one", `SELECT 1`, `SELECT 1`))
	tests := []struct {
		name   string
		shards migrate.Shards
		ms     *bunmigrate.Migrations
		opts   []migrate.Option
		want   []string
		also   error
	}{
		{"nil shards", nil, ms, nil, []string{"no shards"}, nil},
		{"empty shards", migrate.DBs{}, ms, nil, []string{"no shards"}, nil},
		{"nil db", migrate.DBs{"s0": nil}, ms, nil, []string{"shard s0", "*bun.DB"}, nil},
		{"a transaction", otherShards{"s0": db, "s1": bun.Tx{}}, ms, nil, []string{"shard s1", "bun.Tx", "*bun.DB"}, nil},
		{"nil migrations", dbs, nil, nil, []string{"no migrations"}, nil},
		{"empty migrations", dbs, bunmigrate.NewMigrations(), nil, []string{"migrations are empty"}, nil},
		{"unknown migration", dbs, ms, []migrate.Option{migrate.WithScope("20260101000009", migrate.OnShards("s0"))},
			[]string{`"20260101000009"`, "no such migration"}, nil},
		{"scoped twice", dbs, ms, []migrate.Option{
			migrate.WithScope("20260101000001", migrate.OnShards("s0")),
			migrate.WithScope("20260101000001_one", migrate.OnShards("s1"))},
			[]string{"scoped twice"}, nil},
		{"no scopes", dbs, ms, []migrate.Option{migrate.WithScope("20260101000001")}, []string{"no scopes"}, nil},
		{"zero scope", dbs, ms, []migrate.Option{migrate.WithScope("20260101000001", migrate.Scope{})}, []string{"zero Scope"}, nil},
		{"no shard", dbs, ms, []migrate.Option{migrate.WithScope("20260101000001", migrate.OnShards())}, []string{"OnShards()", "nowhere"}, nil},
		{"unknown shard", dbs, ms, []migrate.Option{migrate.WithScope("20260101000001", migrate.OnShards("s0", "s9"))},
			[]string{`OnShards("s9")`, "[s0 s1]"}, migrate.ErrUnknownShard},
		{"no model", dbs, ms, []migrate.Option{migrate.WithScope("20260101000001", migrate.ForModels())}, []string{"ForModels()"}, nil},
		{"not a pointer", dbs, ms, []migrate.Option{migrate.WithScope("20260101000001", migrate.ForModels(Tag{}))},
			[]string{"migrate_test.Tag is not a pointer"}, nil},
		{"not a struct", dbs, ms, []migrate.Option{migrate.WithScope("20260101000001", migrate.ForModels((*int)(nil)))},
			[]string{"*int is not a pointer to a model struct"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := migrate.New(tt.shards, tt.ms, tt.opts...)
			if m != nil || !errors.Is(err, migrate.ErrInvalidArgument) {
				t.Fatalf("New = %v, %v; want ErrInvalidArgument", m, err)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Errorf("New = %v; want it to match %v too", err, tt.also)
			}
			wantIn(t, err, tt.want...)
		})
	}
}
