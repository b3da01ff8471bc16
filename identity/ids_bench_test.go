package identity_test

import (
	"testing"

	"github.com/bunshard/bunshard/identity"
)

// BenchmarkGeneratorNext measures one goroutine taking IDs from one
// generator.
func BenchmarkGeneratorNext(b *testing.B) {
	g, err := identity.NewGenerator(identity.DefaultLayout(), 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ids/s")
}

// BenchmarkGeneratorNextParallel measures GOMAXPROCS goroutines contending
// for one generator: the worst case for its compare-and-swap loop.
func BenchmarkGeneratorNextParallel(b *testing.B) {
	g, err := identity.NewGenerator(identity.DefaultLayout(), 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := g.Next(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ids/s")
}

func BenchmarkLayoutDecode(b *testing.B) {
	l := identity.DefaultLayout()
	g, err := identity.NewGenerator(l, 1)
	if err != nil {
		b.Fatal(err)
	}
	id, err := g.Next()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		l.Decode(id)
	}
}
