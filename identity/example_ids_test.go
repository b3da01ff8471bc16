package identity_test

import (
	"fmt"
	"time"

	"github.com/bunshard/bunshard/identity"
)

func ExampleGenerator() {
	l := identity.DefaultLayout()
	// This process issues IDs in bucket 17; no other generator, process or
	// database function may use that bucket.
	g, err := identity.NewGenerator(l, 17)
	if err != nil {
		panic(err)
	}
	a, _ := g.Next()
	b, _ := g.Next()
	at, bucket, _ := l.Decode(b)
	fmt.Println("increasing:", b > a)
	fmt.Println("bucket:", bucket)
	fmt.Println("made within the last second:", time.Since(at) < time.Second)
	// Output:
	// increasing: true
	// bucket: 17
	// made within the last second: true
}

func ExampleLayout_Decode() {
	l := identity.DefaultLayout()
	id, err := l.Encode(time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC), 513, 5)
	if err != nil {
		panic(err)
	}
	at, bucket, seq := l.Decode(id)
	fmt.Println(id)
	fmt.Println(at, bucket, seq)
	// Output:
	// 175946858498101253
	// 2026-05-01 12:30:00 +0000 UTC 513 5
}

func ExampleLayout_FunctionSQL() {
	l := identity.DefaultLayout()
	// Shard s0 owns buckets 0-511; its database issues IDs in bucket 0,
	// reserved for it.
	sql, err := l.FunctionSQL("app", "next_id", 0, 1)
	if err != nil {
		panic(err)
	}
	fmt.Print(sql)
	fmt.Println("CREATE TABLE app.orders (id bigint PRIMARY KEY DEFAULT app.next_id(), total bigint);")
	// Output:
	// CREATE SEQUENCE IF NOT EXISTS "app"."next_id_seq";
	// CREATE OR REPLACE FUNCTION "app"."next_id"() RETURNS bigint
	// LANGUAGE plpgsql VOLATILE AS $bunshard$
	// -- bunshard ID layout 2025-01-01T00:00:00Z/41/10/12, buckets 0 to 0
	// DECLARE
	// 	ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1735689600000;
	// 	v bigint := nextval('"app"."next_id_seq"');
	// BEGIN
	// 	IF ms < 0 OR ms >= 2199023255552 THEN
	// 		RAISE EXCEPTION 'bunshard: clock % is outside the time range of ID layout 2025-01-01T00:00:00Z/41/10/12', clock_timestamp();
	// 	END IF;
	// 	RETURN (ms << 22) | (0::bigint << 12) | (v & 4095);
	// END
	// $bunshard$;
	// CREATE TABLE app.orders (id bigint PRIMARY KEY DEFAULT app.next_id(), total bigint);
}
