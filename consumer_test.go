package eventstore_test

import (
	"testing"

	"github.com/edge-es/eventstore"
)

// TestGroupMember checks the hash against Message DB's definition,
// computed independently: abs(first 8 bytes of md5(cardinal ID) as a
// big-endian int64) mod size.
func TestGroupMember(t *testing.T) {
	t.Parallel()
	sizes := []int{2, 3, 5, 7}
	cases := []struct {
		stream string
		want   []int // for each of sizes
	}{
		{"account-123", []int{1, 1, 3, 3}},       // md5("123") = 202cb962...: a positive int64
		{"account-123+alice", []int{1, 1, 3, 3}}, // the same cardinal ID: the same member
		{"order-1", []int{0, 0, 1, 2}},           // md5("1") = c4ca4238...: negative
		{"entity-abc+x+y", []int{0, 2, 4, 2}},
		{"thing-42", []int{1, 0, 3, 4}},
		{"abc", []int{0, 2, 4, 2}}, // no cardinal ID: the whole stream ID is hashed
	}
	for _, c := range cases {
		for i, size := range sizes {
			if got := eventstore.GroupMember(c.stream, size); got != c.want[i] {
				t.Errorf("GroupMember(%q, %d) = %d, want %d", c.stream, size, got, c.want[i])
			}
		}
	}
	if eventstore.GroupMember("anything-1", 1) != 0 || eventstore.GroupMember("anything-1", 0) != 0 {
		t.Error("a group of one (or none) has member 0 only")
	}
}
