package loader_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run on leaked goroutines. These tests open *sql.DB
// values only to read Bun's table metadata (they never dial), so the one
// goroutine database/sql starts per pool is not ours to close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}
