package numeric_test

import (
	"fmt"

	"github.com/bunshard/bunshard/internal/numeric"
)

func Example() {
	a, _ := numeric.Parse("1.50")
	b, _ := numeric.Parse("1.5")
	sum := numeric.Add(a, b)
	fmt.Println(numeric.Compare(a, b), a.Key() == b.Key(), sum, numeric.Avg(sum, 2))
	// Output: 0 true 3.00 1.5000000000000000
}
