package loader_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/internal/pgtest"
)

// TestMain starts two PostgreSQL servers (the shards of load_test.go) and
// fails the run on leaked goroutines once they are closed. The internal
// tests open *sql.DB values only to read Bun's table metadata (they never
// dial), so the one goroutine database/sql starts per such pool is not ours
// to close.
func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, 2, func() error {
		return goleak.Find(goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
	}))
}
