package shardtest

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
)

// shared is the Set that Main started.
var shared atomic.Pointer[Set]

// Main starts n servers (or takes them from BUNSHARD_TEST_PG), makes them available through
// [Shared], runs the tests and closes the servers; it returns the exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(shardtest.Main(m, 4)) }
//
// When the servers cannot be started it runs no test, prints why (and how to install
// PostgreSQL or name servers) to standard error, and returns 1: tests never skip for lack
// of a server. A failure to close the servers also turns exit code 0 into 1.
//
// When the tests passed, each after func then runs, after the servers are closed (a
// goroutine-leak check, say: func() error { return goleak.Find() }); an error is printed
// and turns the exit code into 1.
func Main(m *testing.M, n int, after ...func() error) int {
	set, err := Start(n)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start %d PostgreSQL server(s) for the tests:\n%v\n", n, err)
		return 1
	}
	shared.Store(set)
	code := m.Run()
	shared.Store(nil)
	if err := set.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: stopping the test PostgreSQL servers: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	for _, f := range after {
		if code != 0 {
			break
		}
		if err := f(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: after the tests: %v\n", err)
			code = 1
		}
	}
	return code
}

// Shared returns the Set that [Main] started for this test binary. It panics when Main is
// not running, since the test package's TestMain then forgot to call it.
func Shared() *Set {
	set := shared.Load()
	if set == nil {
		panic("shardtest: Shared called outside shardtest.Main; start the servers with `func TestMain(m *testing.M) { os.Exit(shardtest.Main(m, N)) }`")
	}
	return set
}
