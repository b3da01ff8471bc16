package session_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

var joinedContinent = regexp.MustCompile(`"location"\."continent" (?:= '([^']*)'|IN \(([^)]*)\))`)

// continentsIn returns the continents a statement's joined shard-key
// condition names, sorted.
func continentsIn(q string) []string {
	m := joinedContinent.FindStringSubmatch(q)
	if m == nil {
		return nil
	}
	if m[1] != "" {
		return []string{m[1]}
	}
	var out []string
	for _, s := range strings.Split(m[2], ",") {
		out = append(out, strings.Trim(strings.TrimSpace(s), "'"))
	}
	slices.Sort(out)
	return out
}

// TestWhereShardKeyOnJoinedRelation: WhereShardKey("location.continent",
// ...) on a select of reports that joins their Location runs only on the
// shards the chooser gives those continents, each with its own
// continents, and returns what the unsharded database returns; as a
// relation's Go name, nested under the ANDed own-model criteria, under
// the scatter guard, and with GroupBy. A relation the select does not
// join, a has-many one, and an unknown column are refused before anything
// is sent.
func TestWhereShardKeyOnJoinedRelation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(24, 5, 7))

	truthIDs := func(conts []string, extra string) []int64 {
		t.Helper()
		var ids []int64
		q := f.single.NewSelect().TableExpr("weather_reports AS report").
			Join("JOIN weather_locations AS location ON location.id = report.location_id").ColumnExpr("report.id").
			Where("location.continent IN (?)", bun.List(conts)).OrderExpr("report.id")
		if extra != "" {
			q = q.Where(extra)
		}
		if err := q.Scan(ctx, &ids); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	cases := []struct {
		name  string
		key   string
		conts []string
	}{
		{"alias", "location.continent", []string{"Asia", "Europe"}},
		{"Go name", "Location.continent", []string{"South America"}},
		{"three continents", "location.continent", []string{"Europe", "North America", "Asia"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.reset()
			var got []*weather.Report
			args := make([]any, len(c.conts))
			for i, v := range c.conts {
				args[i] = v
			}
			must(t, s.NewSelect().Model(&got).Relation("Location").WhereShardKey(c.key, args...).Order("id").Scan(ctx))
			want := truthIDs(c.conts, "")
			if g := reportIDs(got); !slices.Equal(g, want) || len(want) == 0 {
				t.Errorf("reports of %v = %v; want %v (unsharded)", c.conts, g, want)
			}
			for i, id := range weather.Shards {
				mine := []string{}
				if slices.Contains(c.conts, weather.Continents[i]) {
					mine = []string{weather.Continents[i]}
				}
				sqls := f.sqlOn(id, "SELECT")
				switch {
				case len(mine) == 0 && len(sqls) > 0:
					t.Errorf("shard %s holds none of %v but ran %q", id, c.conts, sqls)
				case len(mine) > 0 && (len(sqls) != 1 || !slices.Equal(continentsIn(sqls[0]), mine)):
					t.Errorf("shard %s ran %q; want one select naming only %v", id, sqls, mine)
				}
			}
		})
	}

	// ANDed with a criterion on the model itself, and counted.
	f.reset()
	n, err := s.NewSelect().Model((*weather.Report)(nil)).Relation("Location").
		WhereShardKey("location.continent", "Asia", "Europe").Where("temperature > ?", 10).Count(ctx)
	must(t, err)
	if want := len(truthIDs([]string{"Asia", "Europe"}, "temperature > 10")); n != want {
		t.Errorf("count = %d; want %d", n, want)
	}
	if got := f.perShard(); got[0] != 0 || got[3] != 0 {
		t.Errorf("count ran %v statements per shard; want none on north_america and south_america", got)
	}

	// The scatter guard passes a select the joined key narrows.
	guarded := f.session(t, session.WithScatterGuard())
	var rs []*weather.Report
	if err := guarded.NewSelect().Model(&rs).Relation("Location").WhereShardKey("location.continent", "Asia").Scan(ctx); err != nil {
		t.Errorf("guarded select by location.continent: %v; want it to route", err)
	}

	// Refused before anything is sent.
	f.reset()
	for _, c := range []struct {
		q    *session.SelectQuery
		want string
	}{
		{s.NewSelect().Model(&rs).WhereShardKey("location.continent", "Asia"), `call Relation("Location")`},
		{s.NewSelect().Model(&rs).Relation("Location").WhereShardKey("location.planet", "Mars"), `no column "planet"`},
		{s.NewSelect().Model(&rs).Relation("Location").WhereShardKey("site.continent", "Asia"), `no relation "site"`},
		{s.NewSelect().Model(&[]*weather.Location{}).Relation("Reports").WhereShardKey("reports.id", 1), "not a has-one or belongs-to"},
	} {
		if err := c.q.Scan(ctx); !errors.Is(err, session.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Scan = %v; want ErrInvalidArgument mentioning %q", err, c.want)
		}
	}
	if got := f.perShard(); slices.Max(got) != 0 {
		t.Errorf("refused selects ran %v statements per shard; want none", got)
	}
}

// homedReport is weather_reports with its location relation under a Go name
// ("HomeLocation") that its bun tag renames ("home"), so Bun joins it as
// "home", not as the underscored Go name "home_location".
type homedReport struct {
	bun.BaseModel `bun:"table:weather_reports,alias:report"`
	identity.Token

	ID           int64             `bun:",pk"`
	LocationID   int64             `bun:",notnull"`
	Temperature  float64           `bun:",notnull"`
	HomeLocation *weather.Location `bun:"home,rel:belongs-to,join:location_id=id"`
}

// TestWhereShardKeyOnTagNamedRelation: a joined shard key names the relation
// as Bun's join alias does (the field's SQL name, here its tag's "home") or by
// its Go name, and the condition is written on Bun's alias, so the select runs
// on the key's shard and returns what the unsharded database holds.
func TestWhereShardKeyOnTagNamedRelation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(24, 5, 7))
	var want []int64
	must(t, f.single.NewSelect().TableExpr("weather_reports AS report").
		Join("JOIN weather_locations AS location ON location.id = report.location_id").ColumnExpr("report.id").
		Where("location.continent = ?", "Asia").OrderExpr("report.id").Scan(ctx, &want))
	for _, key := range []string{"home.continent", "HomeLocation.continent"} {
		f.reset()
		var got []*homedReport
		if err := s.NewSelect().Model(&got).Relation("HomeLocation").WhereShardKey(key, "Asia").Order("id").Scan(ctx); err != nil {
			t.Errorf("WhereShardKey(%q): %v", key, err)
			continue
		}
		ids := make([]int64, len(got))
		for i, r := range got {
			ids[i] = r.ID
			if r.HomeLocation == nil || r.HomeLocation.Continent != "Asia" {
				t.Errorf("WhereShardKey(%q): report %d has location %+v; want one in Asia", key, r.ID, r.HomeLocation)
			}
		}
		if !slices.Equal(ids, want) || len(want) == 0 {
			t.Errorf("WhereShardKey(%q) = %v; want %v (unsharded)", key, ids, want)
		}
		if got := f.perShard(); slices.Max(got) != 1 || got[slices.Index(weather.Continents, "Asia")] != 1 {
			t.Errorf("WhereShardKey(%q) ran %v statements per shard; want one, on Asia's shard", key, got)
		}
	}
}
