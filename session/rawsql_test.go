package session

import "testing"

// TestPerShardClause: the clauses whose per-shard answers, concatenated,
// are not one database's answer are found at any depth, and nothing in
// literals, quoted identifiers, dollar quotes, comments or placeholders
// counts. No database needed.
func TestPerShardClause(t *testing.T) {
	cases := []struct{ sql, want string }{
		{"SELECT id FROM t", ""},
		{"SELECT id FROM t WHERE a = 1 UNION ALL SELECT id FROM u", ""},
		{"SELECT id FROM t ORDER BY id", "ORDER BY"},
		{"select id from t order\n\tby id", "ORDER BY"},
		{"SELECT id FROM t LIMIT 10", "LIMIT"},
		{"SELECT id FROM t OFFSET 5", "OFFSET"},
		{"SELECT id FROM t FETCH FIRST 3 ROWS ONLY", "FETCH FIRST"},
		{"SELECT DISTINCT a FROM t", "DISTINCT"},
		{"SELECT a FROM t GROUP BY a", "GROUP BY"},
		{"SELECT count(*) FROM t", "the aggregate count()"},
		{"SELECT COUNT (*) FROM t", "the aggregate count()"},
		{"SELECT sum(x), avg(y) FROM t", "the aggregate sum()"},
		{"SELECT row_number() OVER (PARTITION BY a) FROM t", "a window (OVER)"},
		{"SELECT a FROM t UNION SELECT a FROM u", "UNION (without ALL)"},
		{"SELECT a FROM t INTERSECT SELECT a FROM u", "INTERSECT"},
		{"SELECT a FROM t EXCEPT ALL SELECT a FROM u", "EXCEPT"},
		{"WITH top AS (SELECT id FROM t ORDER BY x LIMIT 5) SELECT id FROM top", "ORDER BY"},
		{"SELECT * FROM (SELECT max(x) AS m FROM t) s", "the aggregate max()"},
		{"UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t LIMIT 10)", "LIMIT"},
		{"SELECT count FROM stats", ""},
		{"SELECT 'ORDER BY x LIMIT 1', count_all FROM t", ""},
		{"SELECT E'it\\'s LIMIT 1' FROM t", ""},
		{`SELECT "limit", "order by" FROM t`, ""},
		{"SELECT $q$ GROUP BY a $q$ FROM t", ""},
		{"SELECT $1 FROM t -- ORDER BY x\nWHERE a = 2", ""},
		{"SELECT /* LIMIT /* nested */ count(*) */ a FROM t", ""},
		{"SELECT a FROM ?TableName WHERE b = ?limit", ""},
		{"SELECT a FROM t WHERE b = 'x''LIMIT'", ""},
		{"SELECT a FROM t /* unterminated LIMIT", ""},
		{"SELECT a FROM t WHERE b = 'unterminated LIMIT", ""},
	}
	for _, c := range cases {
		if got := perShardClause(c.sql); got != c.want {
			t.Errorf("perShardClause(%q) = %q; want %q", c.sql, got, c.want)
		}
	}
}

// TestWritesSQL: data-changing commands are found at any depth, and not
// in literals, quoted names or comments. No database needed.
func TestWritesSQL(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT * FROM plans":                                         false,
		"UPDATE plans SET name = 'x' RETURNING id":                    true,
		"WITH d AS (DELETE FROM plans RETURNING id) SELECT id FROM d": true,
		"insert into plans values (1)":                                true,
		"SELECT * FROM plans FOR UPDATE":                              true,
		"SELECT 'UPDATE plans' FROM plans -- DELETE":                  false,
		`SELECT "update" FROM plans`:                                  false,
	} {
		if got := writesSQL(sql); got != want {
			t.Errorf("writesSQL(%q) = %v; want %v", sql, got, want)
		}
	}
}
