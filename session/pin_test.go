package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestEmptyPinsNeverFanOut guards that a pin naming no shard (SetShardIDs()
// with no ids, the empty id, Using() with no ids, WithShardID(ctx, "")) is
// ErrInvalidArgument for every kind of statement, and that nothing reaches
// any shard: before, each of them fell through to the chooser and ran on
// every shard (a DELETE on every shard).
func TestEmptyPinsNeverFanOut(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	d := weather.Generate(8, 2, 1)
	f.seed(t, s, d)
	var before [][]int64
	for _, id := range weather.Shards {
		before = append(before, f.rowsOn(t, id, "weather_locations"), f.rowsOn(t, id, "weather_reports"))
	}

	// A pin is applied to a statement through the session it runs on, its
	// context and its statement options.
	type pin struct {
		name  string
		sess  *session.Session
		ctx   context.Context
		opts  []session.StatementOption
		where string // what the error must name
	}
	pins := []pin{
		{"SetShardIDs()", s, ctx, []session.StatementOption{session.SetShardIDs()}, "SetShardIDs()"},
		{`SetShardID("")`, s, ctx, []session.StatementOption{session.SetShardID("")}, "empty shard id"},
		{"Using()", s.Using(), ctx, nil, "Using()"},
		{`Using("")`, s.Using(""), ctx, nil, "empty shard id"},
		{`WithShardID(ctx, "")`, s, session.WithShardID(ctx, ""), nil, `WithShardID(ctx, "")`},
	}
	type op struct {
		name   string
		noOpts bool // the operation takes no statement options
		run    func(p pin) error
	}
	ops := []op{
		{"select", false, func(p pin) error {
			var locs []weather.Location
			return p.sess.NewSelect().Model(&locs).Options(p.opts...).Scan(p.ctx)
		}},
		{"count", false, func(p pin) error {
			_, err := p.sess.NewSelect().Model((*weather.Location)(nil)).Options(p.opts...).Count(p.ctx)
			return err
		}},
		{"Get", true, func(p pin) error {
			var loc weather.Location
			return p.sess.Get(p.ctx, &loc, d.Locations[0].ID)
		}},
		{"Insert", false, func(p pin) error {
			loc := &weather.Location{ID: 900, Continent: "Asia", City: "Nowhere"}
			return p.sess.Insert(p.ctx, loc, p.opts...)
		}},
		{"Update", false, func(p pin) error {
			loc := *d.Locations[1]
			loc.City = "Renamed"
			return p.sess.Update(p.ctx, &loc, p.opts...)
		}},
		{"Update (no token)", false, func(p pin) error {
			loc := weather.Location{ID: d.Locations[1].ID, Continent: d.Locations[1].Continent, City: "Renamed"}
			return p.sess.Update(p.ctx, &loc, p.opts...)
		}},
		{"Delete", false, func(p pin) error {
			loc := *d.Locations[2]
			return p.sess.Delete(p.ctx, &loc, p.opts...)
		}},
		{"NewUpdate", false, func(p pin) error {
			_, err := p.sess.NewUpdate().Model((*weather.Location)(nil)).Set("city = 'x'").Where("TRUE").Options(p.opts...).Exec(p.ctx)
			return err
		}},
		{"NewDelete", false, func(p pin) error {
			_, err := p.sess.NewDelete().Model((*weather.Report)(nil)).Where("TRUE").Options(p.opts...).Exec(p.ctx)
			return err
		}},
	}
	for _, p := range pins {
		for _, o := range ops {
			if o.noOpts && p.opts != nil {
				continue // Get takes no statement options
			}
			t.Run(p.name+"/"+o.name, func(t *testing.T) {
				f.reset()
				err := o.run(p)
				if !errors.Is(err, session.ErrInvalidArgument) {
					t.Fatalf("%s under %s = %v; want ErrInvalidArgument", o.name, p.name, err)
				}
				wantIn(t, err, p.where)
				if c := f.perShard(); slices.ContainsFunc(c, func(n int) bool { return n != 0 }) {
					t.Errorf("%s under %s ran %v statements per shard; want none anywhere", o.name, p.name, c)
				}
			})
		}
	}
	var after [][]int64
	for _, id := range weather.Shards {
		after = append(after, f.rowsOn(t, id, "weather_locations"), f.rowsOn(t, id, "weather_reports"))
	}
	if !slices.EqualFunc(before, after, slices.Equal) {
		t.Errorf("rows per shard changed: %v, then %v", before, after)
	}
}
