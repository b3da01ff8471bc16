package session

import (
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
)

// Key values are typed before anyone routes on them. A primary-key value of
// a Get and a value declared with WhereShardKey are converted to the Go type
// of the model's column (the field's type, pointers removed) before a
// chooser hashes it or looks it up, and the converted value is what the SQL
// sends. So "42", 42 and int32(42) name the same row of an int64 column and
// go to the same shard with every chooser, while a value that cannot be
// converted without loss is an error. The rules, strict on purpose (a key
// of the wrong type is almost always a bug, and a guess routes it to a shard
// that silently has nothing):
//
//   - a value of the column's type, or of a type with the same underlying
//     kind (type TenantID int64 for an int64 column), is taken as it is;
//   - integer columns take integers of any size and sign that fit the
//     column; decimal strings ("42", "-7"; strconv.ParseInt's syntax) that
//     fit; and floats that hold an integer exactly, up to 2^53 in magnitude
//     (beyond that a float64 cannot tell neighbouring integers apart), so
//     42.0 is 42 while 1001.9, NaN and 1e300 are errors;
//   - float columns take floats and integers that convert exactly;
//   - string columns take strings only: 42 for a string column is an error,
//     not "42" (format it yourself if that is what you mean);
//   - columns of any other type take values of that type only;
//   - a driver.Valuer (sql.NullInt64, ...) is replaced by its Value first;
//   - nil, a nil pointer and a NULL Valuer are errors: NULL names no shard
//     and matches no row.
//
// typedKey is that conversion for one value of column f of model t; the
// error wraps ErrInvalidArgument and names what, the model, the column, its
// type and the value.
func typedKey(what string, t *schema.Table, f *schema.Field, x any) (any, error) {
	to := f.IndirectType
	if reflect.TypeOf(x) == to {
		return x, nil // the common case, and it allocates nothing
	}
	v, err := convertKey(reflect.ValueOf(x), to)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: column %s.%s is %s; %s %s", ErrInvalidArgument,
			what, t.TypeName, f.Name, to, describeValue(x), err)
	}
	return v.Interface(), nil
}

// typedPK checks that pk has one value per primary-key column of mi and
// returns them typed as typedKey does.
func typedPK(mi *modelInfo, pk []any) ([]any, error) {
	if err := checkPK(mi, pk); err != nil {
		return nil, err
	}
	t := mi.table
	out := make([]any, len(pk))
	for i, f := range t.PKs {
		v, err := typedKey("Get "+t.TypeName, t, f, pk[i])
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// typedCriteria returns criteria with their values typed as typedKey does,
// and fails for a column the model lacks. It returns criteria itself when
// every value already has its column's type.
func typedCriteria(op chooser.Op, t *schema.Table, criteria []chooser.Criterion) ([]chooser.Criterion, error) {
	out := criteria
	copied := false
	for i, c := range criteria {
		f, ok := t.FieldMap[c.Column]
		if !ok {
			return nil, fmt.Errorf("%w: WhereShardKey: model %s has no column %q", ErrInvalidArgument, t.TypeName, c.Column)
		}
		var vals []any // a typed copy of c.Values, made on the first value that needs it
		for j, x := range c.Values {
			if reflect.TypeOf(x) == f.IndirectType {
				continue
			}
			v, err := typedKey(op.String()+" "+t.TypeName+": WhereShardKey", t, f, x)
			if err != nil {
				return nil, err
			}
			if vals == nil {
				vals = append([]any(nil), c.Values...)
			}
			vals[j] = v
		}
		if vals == nil {
			continue
		}
		if !copied {
			out, copied = append([]chooser.Criterion(nil), criteria...), true
		}
		out[i].Values = vals
	}
	return out, nil
}

func describeValue(x any) string {
	if s, ok := x.(string); ok {
		return fmt.Sprintf("value %q (string)", s)
	}
	return fmt.Sprintf("value %v (%T)", x, x)
}

// maxExactFloat is 2^53: every integer up to it in magnitude is a float64,
// and beyond it a float64 stands for several integers.
const maxExactFloat = 1 << 53

// convertKey converts v to type to under the rules of typedKey, or says
// why it cannot.
func convertKey(v reflect.Value, to reflect.Type) (reflect.Value, error) {
	// Unwrap pointers, interfaces and Valuers; bounded, since a Valuer may
	// return another Valuer.
	for range 8 {
		if !v.IsValid() || v.Type() == to {
			break
		}
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			v = reflect.Value{}
			break
		}
		if val, ok := v.Interface().(driver.Valuer); ok {
			x, err := val.Value()
			if err != nil {
				return reflect.Value{}, fmt.Errorf("cannot be read: its Value method failed: %w", err)
			}
			v = reflect.ValueOf(x)
			continue
		}
		if v.Kind() != reflect.Pointer && v.Kind() != reflect.Interface {
			break
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return reflect.Value{}, fmt.Errorf("is NULL, which names no shard and matches no row")
	}
	switch k := to.Kind(); {
	case v.Type() == to:
		return v, nil
	case isInt(k) || isUint(k):
		return toIntegerKey(v, to)
	case k == reflect.Float32 || k == reflect.Float64:
		return toFloatKey(v, to)
	case v.Kind() == k && v.Type().ConvertibleTo(to):
		// The same underlying type (type Continent string for a string
		// column): a lossless conversion.
		return v.Convert(to), nil
	}
	return reflect.Value{}, fmt.Errorf("cannot be converted to it; pass a %s", to)
}

func isInt(k reflect.Kind) bool  { return k >= reflect.Int && k <= reflect.Int64 }
func isUint(k reflect.Kind) bool { return k >= reflect.Uint && k <= reflect.Uintptr }

// toIntegerKey converts an integer, a decimal string or an integral float to
// the integer type to, if it fits.
func toIntegerKey(v reflect.Value, to reflect.Type) (reflect.Value, error) {
	var (
		neg bool   // the value is negative
		mag uint64 // its magnitude
	)
	switch k := v.Kind(); {
	case isInt(k):
		n := v.Int()
		neg, mag = n < 0, uint64(n)
		if neg {
			mag = -mag
		}
	case isUint(k):
		mag = v.Uint()
	case k == reflect.String:
		s := v.String()
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			neg, mag = n < 0, uint64(n)
			if neg {
				mag = -mag
			}
		} else if u, uerr := strconv.ParseUint(s, 10, 64); uerr == nil {
			mag = u
		} else if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return reflect.Value{}, fmt.Errorf("is out of its range")
		} else {
			return reflect.Value{}, fmt.Errorf("is not a decimal integer")
		}
	case k == reflect.Float32 || k == reflect.Float64:
		f := v.Float()
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return reflect.Value{}, fmt.Errorf("is not a number")
		case f != math.Trunc(f):
			return reflect.Value{}, fmt.Errorf("has a fractional part")
		case math.Abs(f) > maxExactFloat:
			return reflect.Value{}, fmt.Errorf("is beyond 2^53, where a float cannot name one integer exactly; pass an integer")
		}
		neg, mag = f < 0, uint64(math.Abs(f))
	default:
		return reflect.Value{}, fmt.Errorf("is not an integer; pass an integer or a decimal string")
	}
	out := reflect.New(to).Elem()
	if isUint(to.Kind()) {
		if neg && mag != 0 {
			return reflect.Value{}, fmt.Errorf("is negative")
		}
		if out.OverflowUint(mag) {
			return reflect.Value{}, fmt.Errorf("is out of its range")
		}
		out.SetUint(mag)
		return out, nil
	}
	if !neg && mag > math.MaxInt64 || neg && mag > 1<<63 {
		return reflect.Value{}, fmt.Errorf("is out of its range")
	}
	n := int64(mag)
	if neg {
		n = -n // for mag 1<<63 this wraps to math.MinInt64, as it should
	}
	if out.OverflowInt(n) {
		return reflect.Value{}, fmt.Errorf("is out of its range")
	}
	out.SetInt(n)
	return out, nil
}

// toFloatKey converts a float or an integer to the float type to, if exactly.
func toFloatKey(v reflect.Value, to reflect.Type) (reflect.Value, error) {
	out := reflect.New(to).Elem()
	switch k := v.Kind(); {
	case k == reflect.Float32 || k == reflect.Float64:
		f := v.Float()
		out.SetFloat(f)
		if out.Float() != f && !math.IsNaN(f) {
			return reflect.Value{}, fmt.Errorf("is not exactly a %s", to)
		}
	case isInt(k):
		n := v.Int()
		out.SetFloat(float64(n))
		if f := out.Float(); f < -(1<<63) || f >= 1<<63 || int64(f) != n {
			return reflect.Value{}, fmt.Errorf("is not exactly a %s", to)
		}
	case isUint(k):
		n := v.Uint()
		out.SetFloat(float64(n))
		if f := out.Float(); f >= 1<<64 || uint64(f) != n {
			return reflect.Value{}, fmt.Errorf("is not exactly a %s", to)
		}
	default:
		return reflect.Value{}, fmt.Errorf("is not a number; pass a float or an integer")
	}
	return out, nil
}
