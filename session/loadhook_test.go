package session_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// loadLog records OnLoad calls (test_shard_id_event's listener).
type loadLog struct {
	mu     sync.Mutex
	events []string
}

func (l *loadLog) add(s string) {
	l.mu.Lock()
	l.events = append(l.events, s)
	l.mu.Unlock()
}

func (l *loadLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

var onLoads loadLog

type hookLoc struct {
	bun.BaseModel `bun:"table:weather_locations"`
	identity.Token

	ID        int64      `bun:",pk"`
	Continent string     `bun:",notnull"`
	City      string     `bun:",notnull"`
	Reports   []*hookRep `bun:"rel:has-many,join:id=location_id"`
}

func (l *hookLoc) OnLoad(ctx context.Context, shard session.ShardID) {
	onLoads.add(fmt.Sprintf("L%d@%s", l.ID, shard))
}

type hookRep struct {
	bun.BaseModel `bun:"table:weather_reports"`
	identity.Token

	ID          int64     `bun:",pk"`
	LocationID  int64     `bun:",notnull"`
	Temperature float64   `bun:",notnull"`
	ReportTime  time.Time `bun:",notnull"`
	Location    *hookLoc  `bun:"rel:belongs-to,join:location_id=id"`
}

func (r *hookRep) OnLoad(ctx context.Context, shard session.ShardID) {
	onLoads.add(fmt.Sprintf("R%d@%s", r.ID, shard))
}

// expectLoads lists what OnLoad should have seen for locs, in result
// order: each location, then its reports.
func expectLoads(locs []*hookLoc, withReports bool) []string {
	var out []string
	for _, l := range locs {
		sh, _ := l.Shard()
		out = append(out, fmt.Sprintf("L%d@%s", l.ID, sh))
		if withReports {
			for _, r := range l.Reports {
				out = append(out, fmt.Sprintf("R%d@%s", r.ID, sh))
			}
		}
	}
	return out
}

// OnLoad fires once per loaded object with the shard its row came from,
// after the identity-map merge, in result order (parent, then its
// relations), for Session and unit loads; an identity-map hit fires
// nothing.
func TestLoadHookOncePerObjectWithShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 2, 70))
	hs, err := session.New(f.shards, chooser.ShardChooserFunc(weather.ShardChooser), chooser.All, weather.ByContinent,
		session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	onLoads.take()

	var locs []*hookLoc
	if err := hs.NewSelect().Model(&locs).Relation("Reports").Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := onLoads.take(), expectLoads(locs, true); len(locs) != 8 || !slices.Equal(got, want) {
		t.Errorf("Session select OnLoad = %v; want %v", got, want)
	}
	if err := hs.LoadRelation(ctx, &locs, "Reports"); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, w := range expectLoads(locs, true) {
		if w[0] == 'R' {
			want = append(want, w)
		}
	}
	if got := onLoads.take(); !slices.Equal(got, want) {
		t.Errorf("LoadRelation OnLoad = %v; want the reports only, %v", got, want)
	}
	var one hookLoc
	if err := hs.Get(ctx, &one, 3); err != nil {
		t.Fatal(err)
	}
	if got := onLoads.take(); !slices.Equal(got, []string{"L3@europe"}) {
		t.Errorf("Session Get OnLoad = %v; want [L3@europe]", got)
	}

	uow := hs.Begin()
	defer uow.Rollback(ctx)
	var ulocs []*hookLoc
	if err := uow.NewSelect().Model(&ulocs).Relation("Reports").Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := onLoads.take(), expectLoads(ulocs, true); !slices.Equal(got, want) {
		t.Errorf("unit select OnLoad = %v; want %v", got, want)
	}
	// The same rows again: the tracked objects come back, nothing fires.
	var again []*hookLoc
	if err := uow.NewSelect().Model(&again).Relation("Reports").Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if got := onLoads.take(); len(got) != 0 || again[0] != ulocs[0] {
		t.Errorf("second unit select OnLoad = %v; want none (identity-map merge)", got)
	}
	// Reports with their Location: the reports are tracked, and so are
	// the locations: nothing fires.
	var reps []*hookRep
	if err := uow.NewSelect().Model(&reps).Relation("Location").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if got := onLoads.take(); len(got) != 0 {
		t.Errorf("select of tracked reports OnLoad = %v; want none", got)
	}
	if err := uow.ExpungeAll(); err != nil {
		t.Fatal(err)
	}
	// Reports sharing a location: each location fires once, after the
	// first report that holds it.
	var reps2 []*hookRep
	if err := uow.NewSelect().Model(&reps2).Relation("Location").Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	want = nil
	seen := map[*hookLoc]bool{}
	for _, r := range reps2 {
		sh, _ := r.Shard()
		want = append(want, fmt.Sprintf("R%d@%s", r.ID, sh))
		if !seen[r.Location] {
			seen[r.Location] = true
			want = append(want, fmt.Sprintf("L%d@%s", r.Location.ID, sh))
		}
	}
	if got := onLoads.take(); len(reps2) != 16 || len(seen) != 8 || !slices.Equal(got, want) {
		t.Errorf("select of reports with Location OnLoad = %v; want %v", got, want)
	}
	if err := uow.ExpungeAll(); err != nil {
		t.Fatal(err)
	}
	var loc *hookLoc
	if err := uow.Get(ctx, &loc, 6); err != nil {
		t.Fatal(err)
	}
	if err := uow.Get(ctx, &loc, 6); err != nil {
		t.Fatal(err)
	}
	if got := onLoads.take(); !slices.Equal(got, []string{"L6@asia"}) {
		t.Errorf("unit Get, miss then hit, OnLoad = %v; want [L6@asia] once", got)
	}
}
