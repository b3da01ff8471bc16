package main

import (
	"bytes"
	"context"
	"go.uber.org/goleak"
	"strings"
	"testing"
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
		"Tokyo updated on asia (not europe)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
}

// TestMain checks that the demo leaves no goroutine behind (its temporary
// servers' watchers included).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
