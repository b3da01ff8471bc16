package session

import (
	"fmt"
	"strings"
)

// perShardClause returns the first clause in SQL text that each shard
// applies to its own rows only, so that the rows of several shards,
// concatenated, are not what one database holding them all returns: ORDER
// BY (a per-shard order), LIMIT, OFFSET and FETCH (n rows per shard),
// DISTINCT, GROUP BY, HAVING, an aggregate or window call, UNION without
// ALL, INTERSECT and EXCEPT. It looks at every depth (a LIMIT in a CTE or
// subquery is per shard too) and skips string literals, quoted
// identifiers, dollar quotes and comments. It errs on the side of yes: a
// clause in a subquery whose per-shard answer is right still counts.
func perShardClause(sql string) string {
	words := sqlWords(sql)
	next := func(i int) string {
		if i+1 < len(words) {
			return words[i+1]
		}
		return ""
	}
	for i, w := range words {
		switch w {
		case "limit", "offset", "distinct", "having", "intersect", "except":
			return strings.ToUpper(w)
		case "fetch":
			if n := next(i); n == "first" || n == "next" {
				return "FETCH " + strings.ToUpper(n)
			}
		case "order", "group":
			if next(i) == "by" {
				return strings.ToUpper(w) + " BY"
			}
		case "union":
			if next(i) != "all" {
				return "UNION (without ALL)"
			}
		case "over":
			if next(i) == "(" {
				return "a window (OVER)"
			}
		default:
			if aggregates[w] && next(i) == "(" {
				return "the aggregate " + w + "()"
			}
		}
	}
	return ""
}

// aggregates are PostgreSQL's built-in aggregate functions.
var aggregates = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`count sum avg min max array_agg string_agg json_agg jsonb_agg json_object_agg
		jsonb_object_agg xmlagg bool_and bool_or every bit_and bit_or bit_xor range_agg range_intersect_agg
		stddev stddev_pop stddev_samp variance var_pop var_samp corr covar_pop covar_samp regr_avgx regr_avgy
		regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy percentile_cont
		percentile_disc mode rank dense_rank percent_rank cume_dist any_value`) {
		aggregates[f] = true
	}
}

// sqlWords splits SQL text into lower-cased words and the punctuation "("
// (what perShardClause reads), skipping string literals (also E'...' with
// backslash escapes), quoted identifiers, dollar-quoted strings and
// comments (-- to the end of the line, nested /* */) and Bun's
// placeholders.
func sqlWords(sql string) []string {
	var out []string
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				return out
			}
			i += j
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			for depth := 0; ; {
				if strings.HasPrefix(sql[i:], "/*") {
					depth, i = depth+1, i+2
				} else if strings.HasPrefix(sql[i:], "*/") {
					depth, i = depth-1, i+2
				} else {
					i++
				}
				if depth == 0 || i >= len(sql) {
					break
				}
			}
		case c == '\'':
			backslash := len(out) > 0 && i > 0 && (sql[i-1] == 'e' || sql[i-1] == 'E') && out[len(out)-1] == "e"
			if backslash {
				out = out[:len(out)-1] // the E prefix is no word
			}
			i = quoted(sql, i, '\'', backslash)
		case c == '"':
			i = quoted(sql, i, '"', false)
		case c == '$' && i+1 < len(sql) && !isDigit(sql[i+1]):
			j := i + 1
			for j < len(sql) && isWordByte(sql[j]) {
				j++
			}
			if j < len(sql) && sql[j] == '$' {
				tag := sql[i : j+1]
				if k := strings.Index(sql[j+1:], tag); k >= 0 {
					i = j + 1 + k + len(tag)
				} else {
					return out
				}
			} else {
				i++
			}
		case c == '?': // a Bun placeholder: ?, ?0, ?TableName, a named argument
			for i++; i < len(sql) && isWordByte(sql[i]); i++ {
			}
		case c == '(':
			out = append(out, "(")
			i++
		case isWordByte(c) && !isDigit(c):
			j := i
			for j < len(sql) && (isWordByte(sql[j]) || sql[j] == '$') {
				j++
			}
			out = append(out, strings.ToLower(sql[i:j]))
			i = j
		default:
			i++
		}
	}
	return out
}

// quoted returns the index after the literal or identifier that starts at
// sql[i] with quote q (a doubled quote is one character of it; with
// backslash, so is a backslash and the byte after it), or len(sql).
func quoted(sql string, i int, q byte, backslash bool) int {
	for i++; i < len(sql); i++ {
		switch {
		case backslash && sql[i] == '\\':
			i++
		case sql[i] == q:
			if i+1 < len(sql) && sql[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(sql)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordByte(c byte) bool {
	return c == '_' || isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// perShardText remembers the first SQL fragment a builder was given
// (ColumnExpr, Where, Set, Join, ...) that holds a clause each shard
// would apply to its own rows only (perShardClause).
type perShardText struct {
	call, query, clause string
}

// note records query, the text of builder call call, if it is the first
// with such a clause.
func (t *perShardText) note(call, query string) {
	if t.clause != "" {
		return
	}
	if c := perShardClause(query); c != "" {
		*t = perShardText{call, query, c}
	}
}

// vet fails a statement planned on several shards that holds such a
// fragment, unless it carries [PerShard] or writes a reference table
// (alike on every shard): each shard would answer for its own rows only,
// and the shards' answers together are not one database's.
func (t *perShardText) vet(s *Session, what string, mi *modelInfo, shards []ShardID, opts []StatementOption) error {
	if t.clause == "" || len(shards) < 2 || (mi != nil && s.reference(mi)) {
		return nil
	}
	if o := options(opts); o.perShard {
		return nil
	}
	return fmt.Errorf("%w: %s on %d shards %v: %s(%q) holds %s, which each shard applies to its own rows only, so the "+
		"shards' answers together are not what one database holding every row returns; use the session's merging "+
		"builders (Order, Limit, Offset, GroupBy, Aggregate, Count), pin one shard, or add the PerShard() option when "+
		"each shard's own answer is what you want (a subquery over rows kept on the same shard)",
		ErrUnsupported, what, len(shards), shards, t.call, t.query, t.clause)
}

// writesSQL reports whether SQL text holds a data-changing command
// (INSERT, UPDATE, DELETE, MERGE, TRUNCATE) at any depth, outside
// literals and comments; SELECT ... FOR UPDATE counts too (it errs on the
// side of yes).
func writesSQL(sql string) bool {
	for _, w := range sqlWords(sql) {
		switch w {
		case "insert", "update", "delete", "merge", "truncate":
			return true
		}
	}
	return false
}
