// Package weather is SQLAlchemy's sharding example (weather locations sharded
// by continent, with their reports) as Bun models, choosers and a data
// generator, shared by bunshard's tests and benchmarks.
package weather

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// The four shards, in SQLAlchemy's order.
var Shards = []identity.ShardID{"north_america", "asia", "europe", "south_america"}

// Continents are the continents, in the order of Shards.
var Continents = []string{"North America", "Asia", "Europe", "South America"}

// ShardOfContinent maps a continent to its shard.
var ShardOfContinent = map[string]identity.ShardID{
	"North America": "north_america",
	"Asia":          "asia",
	"Europe":        "europe",
	"South America": "south_america",
}

// Location is a city; its continent decides its shard.
type Location struct {
	bun.BaseModel `bun:"table:weather_locations"`
	identity.Token

	ID        int64     `bun:",pk"`
	Continent string    `bun:",notnull"`
	City      string    `bun:",notnull"`
	Reports   []*Report `bun:"rel:has-many,join:id=location_id"`
	Tags      []Tag     `bun:"m2m:location_tags,join:Location=Tag"`
	Station   *Station  `bun:"rel:has-one,join:id=location_id"`
}

// Station is the weather station of a location (has-one).
type Station struct {
	bun.BaseModel `bun:"table:stations"`
	identity.Token

	ID         int64  `bun:",pk"`
	LocationID int64  `bun:",notnull,unique"`
	Name       string `bun:",notnull"`
}

// Report is a temperature reading; it lives on its location's shard.
type Report struct {
	bun.BaseModel `bun:"table:weather_reports"`
	identity.Token

	ID          int64     `bun:",pk"`
	LocationID  int64     `bun:",notnull"`
	Temperature float64   `bun:",notnull"`
	ReportTime  time.Time `bun:",notnull"`
	Location    *Location `bun:"rel:belongs-to,join:location_id=id"`
}

// Tag labels locations (many-to-many through LocationTag).
type Tag struct {
	bun.BaseModel `bun:"table:tags"`
	identity.Token

	ID   int64  `bun:",pk"`
	Name string `bun:",notnull"`
}

// LocationTag is the m2m join model of Location.Tags.
type LocationTag struct {
	bun.BaseModel `bun:"table:location_tags"`

	LocationID int64     `bun:",pk"`
	Location   *Location `bun:"rel:belongs-to,join:location_id=id"`
	TagID      int64     `bun:",pk"`
	Tag        *Tag      `bun:"rel:belongs-to,join:tag_id=id"`
}

// Register registers the m2m join model; call it once per dialect before
// using Location.
func Register(db bun.IDB) { db.Dialect().Tables().Register((*LocationTag)(nil)) }

// CreateSchema creates the tables on db (dropping old ones).
func CreateSchema(ctx context.Context, db bun.IDB) error {
	for _, m := range []any{(*LocationTag)(nil), (*Report)(nil), (*Station)(nil), (*Tag)(nil), (*Location)(nil)} {
		if _, err := db.NewDropTable().Model(m).IfExists().Cascade().Exec(ctx); err != nil {
			return err
		}
	}
	for _, m := range []any{(*Location)(nil), (*Report)(nil), (*Station)(nil), (*Tag)(nil), (*LocationTag)(nil)} {
		if _, err := db.NewCreateTable().Model(m).WithForeignKeys().Exec(ctx); err != nil {
			return err
		}
	}
	_, err := db.NewCreateIndex().Model((*Report)(nil)).Index("weather_reports_location_id").Column("location_id").Exec(ctx)
	return err
}

// ShardChooser places a Location by its continent and a Report (or a
// LocationTag) by its Location: the shard on the location's token, else its
// continent. A report without its Location set cannot be placed.
var ShardChooser = chooser.ShardChooserFunc(func(ctx context.Context, t *schema.Table, obj any) (identity.ShardID, error) {
	switch o := obj.(type) {
	case *Location:
		return byContinent(o)
	case *Report:
		if o.Location == nil {
			return "", fmt.Errorf("weather: report %d has no Location set, so it cannot be placed", o.ID)
		}
		return byContinent(o.Location)
	case *LocationTag:
		if o.Location == nil {
			return "", fmt.Errorf("weather: location tag has no Location set")
		}
		return byContinent(o.Location)
	}
	return "", fmt.Errorf("weather: no placement rule for %s", t.TypeName)
})

func byContinent(l *Location) (identity.ShardID, error) {
	if id, ok := l.Shard(); ok {
		return id, nil
	}
	id, ok := ShardOfContinent[l.Continent]
	if !ok {
		return "", fmt.Errorf("weather: continent %q maps to no shard", l.Continent)
	}
	return id, nil
}

// ByContinent is an ExecuteChooser (and Splitter) for statements that
// declare the continent column; others go to every shard.
var ByContinent = chooser.NewValueMap("continent", ShardOfContinent)

// Data is a generated data set with globally unique ids.
type Data struct {
	Locations []*Location
	Reports   []*Report
}

// Generate makes nLoc locations spread round-robin over the continents and
// perLoc reports for each, deterministically from seed. Temperatures have
// ties (one decimal) so that ordering tests meet them.
func Generate(nLoc, perLoc int, seed uint64) Data {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var d Data
	rid := int64(0)
	for i := range nLoc {
		loc := &Location{ID: int64(i + 1), Continent: Continents[i%len(Continents)], City: fmt.Sprintf("City %04d", i+1)}
		d.Locations = append(d.Locations, loc)
		for j := range perLoc {
			rid++
			rep := &Report{
				ID:          rid,
				LocationID:  loc.ID,
				Temperature: float64(r.IntN(900)-300) / 10,
				ReportTime:  base.Add(time.Duration(j*nLoc+i) * time.Minute),
				Location:    loc,
			}
			d.Reports = append(d.Reports, rep)
		}
	}
	return d
}
