package bench

import (
	"encoding/binary"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/bunshard/bunshard/internal/weather"
)

// A digest stands for a side's whole result, so that a pair whose two sides
// stopped returning the same rows fails (row counts alone let wrong rows
// through). Each side computes it after its timed run, from what the run
// kept, so the timings do not include it. Rows are encoded field by field
// (lengths before strings, so no two rows share an encoding) and hashed with
// xxhash: in order where the workload's result has one (a global ORDER BY),
// else as a multiset (the sum of the rows' hashes, and their count), which is
// what a concatenation in any shard order must match.

// ordered digests rows in their order.
func ordered[T any](rows []T, enc func([]byte, T) []byte) uint64 {
	d := xxhash.New()
	var buf []byte
	for _, r := range rows {
		buf = enc(buf[:0], r)
		_, _ = d.Write(binary.AppendUvarint(nil, uint64(len(buf))))
		_, _ = d.Write(buf)
	}
	return d.Sum64()
}

// unordered digests rows as a multiset: any order gives the same digest.
func unordered[T any](rows []T, enc func([]byte, T) []byte) uint64 {
	var sum uint64
	var buf []byte
	for _, r := range rows {
		buf = enc(buf[:0], r)
		sum += xxhash.Sum64(buf)
	}
	return xxhash.Sum64(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, sum), uint64(len(rows))))
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendInt(b []byte, i int64) []byte { return binary.AppendVarint(b, i) }

// encLocation encodes a location's columns (not its relations).
func encLocation(b []byte, l *weather.Location) []byte {
	b = appendInt(b, l.ID)
	b = appendString(b, l.Continent)
	return appendString(b, l.City)
}

// encReport encodes a report's columns; the time as an instant, whatever
// its time zone.
func encReport(b []byte, r *weather.Report) []byte {
	b = appendInt(b, r.ID)
	b = appendInt(b, r.LocationID)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Temperature))
	return appendInt(b, r.ReportTime.UnixNano())
}

// encLocationTree encodes a location with the multiset digest of its
// reports, so that a report counts only under its own location.
func encLocationTree(b []byte, l *weather.Location) []byte {
	b = encLocation(b, l)
	return binary.LittleEndian.AppendUint64(b, unordered(l.Reports, encReport))
}

func ptrs[T any](rows []T) []*T {
	out := make([]*T, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	return out
}
