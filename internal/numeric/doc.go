// Package numeric handles PostgreSQL numeric values exactly: it parses
// their text, orders them as PostgreSQL does (-Infinity below every number,
// Infinity above, NaN above Infinity and equal to itself; 1 = 1.0 = 1.00),
// adds them, and divides a sum by a count the way avg(numeric) does,
// rounding to the same display scale. It uses math/big only.
//
// It is internal: the session's merges of numeric columns use it.
//
//	a, _ := numeric.Parse("1.50")
//	b, _ := numeric.Parse("1.5")
//	numeric.Compare(a, b)          // 0: equal numbers
//	a.Key() == b.Key()             // true: one GROUP BY group
//	numeric.Add(a, b).String()     // "3.00", the scale of the sum
//	numeric.Avg(numeric.Add(a, b), 2).String() // "1.5000000000000000"
package numeric
