package sqlite

import (
	"os"
	"testing"
)

func TestOpenMemory_CloseRemovesDir(t *testing.T) {
	t.Parallel()
	b, err := OpenMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := b.removeDir
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the store's directory: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("after Close, %s: %v, want it gone", dir, err)
	}
}
