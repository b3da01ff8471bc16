package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/shardtest"
)

// TestDemo runs the demo on its embedded default (temporary servers it
// starts itself) and checks what it reports.
func TestDemo(t *testing.T) {
	t.Setenv("BUNSHARD_DEMO_DSNS", "")
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run = %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"north_america  2 locations", "asia           1 locations", "europe         2 locations", "south_america  2 locations",
		"Get(1) = Tokyo, from asia",
		"route: [europe asia] by chooser",
		"cities: Tokyo, London, Dublin",
		"cities: Toronto\n",
		"report 5 = 61.0, loaded from north_america",
		"85.0 at Quito\n  80.0 at Tokyo",
		"location 1: 1 report(s), mean 80.0",
		"count(*) over all shards: 5",
		"report 6 committed on europe",
		"report 7 committed on south_america",
		"Tokyo (on asia) with continent Europe: ErrShardKeyChanged",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
}

// TestMain checks that the demo leaves no goroutine behind (its temporary
// servers' watchers included).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemoOverPgx runs the demo over pgx's driver in both exec modes
// (BUNSHARD_DEMO_DRIVER): the same output as over pgdriver.
func TestDemoOverPgx(t *testing.T) {
	for _, d := range []string{"pgx", "pgx-simple"} {
		t.Run(d, func(t *testing.T) {
			t.Setenv("BUNSHARD_DEMO_DSNS", "")
			t.Setenv("BUNSHARD_DEMO_DRIVER", d)
			var out bytes.Buffer
			if err := run(context.Background(), &out); err != nil {
				t.Fatalf("run = %v\n%s", err, out.String())
			}
			for _, want := range []string{"Get(1) = Tokyo, from asia", "report 5 = 61.0, loaded from north_america", "85.0 at Quito\n  80.0 at Tokyo"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// TestDemoUnknownDriver: a driver name the demo does not know is refused.
func TestDemoUnknownDriver(t *testing.T) {
	if _, err := openDB("mysql", "postgres://x/y"); err == nil || !strings.Contains(err.Error(), "pgx-simple") {
		t.Fatalf("openDB(mysql) = %v; want an error naming the drivers", err)
	}
}

// TestDemoOnOwnServers runs the demo on servers named in BUNSHARD_DEMO_DSNS,
// here ones without prepared transactions: it uses them, and says that it
// commits in one phase.
func TestDemoOnOwnServers(t *testing.T) {
	set, err := shardtest.Start(4, shardtest.WithSetting("max_prepared_transactions", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var dsns []string
	for i := range 4 {
		dsns = append(dsns, set.Server(i%set.Len()).DSN("postgres"))
	}
	if set.External() {
		t.Skip("external servers (" + shardtest.EnvVar + ") share databases between shards; this test needs four")
	}
	t.Setenv("BUNSHARD_DEMO_DSNS", strings.Join(dsns, ","))
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run = %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"using the databases in BUNSHARD_DEMO_DSNS",
		"max_prepared_transactions = 0: committing in one phase instead",
		"report 6 committed on europe",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
