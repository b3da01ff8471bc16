package session

import "testing"

func TestSetsColumn(t *testing.T) {
	cases := []struct {
		text string
		want bool
	}{
		{` ON CONFLICT (id) DO UPDATE SET "city" = EXCLUDED."city", "continent" = EXCLUDED."continent"`, false},
		{` ON CONFLICT (id) DO UPDATE SET continent = excluded.continent`, false},
		{` ON CONFLICT (id) DO UPDATE SET continent = 'Europe'`, true},
		{` ON CONFLICT (id) DO UPDATE SET "continent"='Europe'`, true},
		{` ON CONFLICT (id) DO UPDATE SET CONTINENT = EXCLUDED.city`, true},
		{` ON CONFLICT (id) DO UPDATE SET continent = EXCLUDED.continent_old`, true},
		{` ON CONFLICT (id) DO UPDATE SET city = 'x' WHERE continent = 'Asia'`, true}, // errs on the side of yes
		{` ON CONFLICT (id) DO UPDATE SET city = EXCLUDED.continent`, false},
		{` ON CONFLICT (id) DO UPDATE SET subcontinent = 'x'`, false},
		{` ON CONFLICT (id) DO UPDATE SET t.continent = 'x'`, false}, // not a SET target PostgreSQL accepts
		{` ON CONFLICT (id) DO UPDATE SET city = 'x' WHERE continent >= 'A'`, false},
		{` ON CONFLICT (id) DO UPDATE SET city = 'x' WHERE continent == 'A'`, false},
		{` ON CONFLICT DO NOTHING RETURNING continent`, false},
		{` ON CONFLICT (id) DO UPDATE SET continent = EXCLUDED.continent || '-x'`, true},
		{` ON CONFLICT (id) DO UPDATE SET continent = EXCLUDED.continent, city = 'x'`, false},
		{` ON CONFLICT (id) DO UPDATE SET continent = EXCLUDED.continent WHERE city = 'x' RETURNING id`, false},
		{` ON CONFLICT (id) DO UPDATE SET "continent" = EXCLUDED."continent" RETURNING "id"`, false},
		{` ON CONFLICT (id) DO UPDATE SET (city, continent) = (EXCLUDED.city, 'Asia')`, true},
		{` ON CONFLICT (id) DO UPDATE SET ("continent") = ROW('Asia')`, true},
		{` ON CONFLICT (id) DO UPDATE SET (city, subcontinent) = ('x', 'y')`, false},
		{``, false},
	}
	for _, c := range cases {
		if got := setsColumn(c.text, "continent"); got != c.want {
			t.Errorf("setsColumn(%q) = %v; want %v", c.text, got, c.want)
		}
	}
}

func TestConflictTail(t *testing.T) {
	sql := `INSERT INTO "t" ("id", "city") VALUES (1, ' ON CONFLICT x RETURNING ') ON CONFLICT DO NOTHING`
	if got := conflictTail(sql); got != " ON CONFLICT DO NOTHING" {
		t.Errorf("conflictTail = %q", got)
	}
	if got := conflictTail(`INSERT INTO "t" VALUES (1)`); got != "" {
		t.Errorf("conflictTail without ON CONFLICT = %q", got)
	}
}
