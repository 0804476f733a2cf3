package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestReadCommands_LeaveNoFiles runs the read commands on a store no
// process has open: they leave nothing beside it (no -wal, no -shm).
func TestReadCommands_LeaveNoFiles(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	dir := filepath.Dir(path)
	before := entries(t, dir)
	for _, args := range [][]string{
		{"streams", path},
		{"read", path, "order-1"},
		{"stats", path},
		{"verify", path},
		{"snapshots", path, "order-1"},
		{"consumers", path},
		{"parked", path, "projector"},
		{"backup", path, filepath.Join(t.TempDir(), "backup.db")},
	} {
		if _, errOut, code := run(t, "", args...); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
		if after := entries(t, dir); !slices.Equal(after, before) {
			t.Fatalf("%s left %v beside the store (was %v)", args[0], after, before)
		}
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	list, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name())
	}
	return names
}
