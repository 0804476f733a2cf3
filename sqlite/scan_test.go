package sqlite

import "testing"

// TestToInt64 checks that the fast conversion of an integer column
// converts as Scan into an *int64 would: an int64 as is, what Scan
// converts (a numeric text), and NULL or a non-number as an error.
func TestToInt64(t *testing.T) {
	for _, c := range []struct {
		in   any
		want int64
		ok   bool
	}{
		{int64(42), 42, true},
		{int64(-1), -1, true},
		{"17", 17, true},
		{[]byte("9"), 9, true},
		{nil, 0, false},
		{"x", 0, false},
		{1.5, 0, false},
	} {
		got, err := toInt64(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("toInt64(%#v) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}
