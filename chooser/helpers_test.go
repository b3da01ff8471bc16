package chooser_test

import (
	"database/sql"
	"reflect"
	"sync"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/schema"
	"go.uber.org/goleak"
)

// Models used across the chooser tests.

type User struct {
	bun.BaseModel `bun:"table:users"`

	ID   int64 `bun:",pk"`
	Name string
}

type Account struct {
	bun.BaseModel `bun:"table:accounts"`

	Slug string `bun:",pk"`
	Plan string
}

// Order has a composite primary key whose first part is the shard key.
type Order struct {
	bun.BaseModel `bun:"table:orders"`

	UserID int64 `bun:",pk"`
	ID     int64 `bun:",pk"`
	Total  int64
}

type Region string

type TicketID int32

// Ticket uses named key types and a nullable column.
type Ticket struct {
	bun.BaseModel `bun:"table:tickets"`

	ID     TicketID `bun:",pk"`
	Region Region
	Owner  *string
	Score  float64
}

var (
	dbOnce sync.Once
	db     *bun.DB
)

// tableOf returns Bun's table for model T. Opening the DB does not connect.
func tableOf[T any]() *schema.Table {
	dbOnce.Do(func() {
		db = bun.NewDB(sql.OpenDB(pgdriver.NewConnector()), pgdialect.New())
	})
	return db.Table(reflect.TypeFor[T]())
}

// TestMain fails the run on leaked goroutines. These tests open *sql.DB
// values only to read Bun's table metadata (they never dial), so the one
// goroutine database/sql starts per pool is not ours to close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}
