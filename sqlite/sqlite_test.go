package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/eventstoretest"
	"github.com/edge-es/eventstore/sqlite"
)

// open returns a backend on a new file in t's temporary directory.
func open(t testing.TB, opts *sqlite.Options) *sqlite.Backend {
	t.Helper()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	eventstoretest.RunWith(t, func(t *testing.T) eventstore.Backend { return open(t, nil) }, &eventstoretest.Options{
		NewPair: func(t *testing.T) (eventstore.Backend, eventstore.Backend) {
			path := filepath.Join(t.TempDir(), "events.db")
			first, err := sqlite.Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			second, err := sqlite.Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			return first, second
		},
	})
}
