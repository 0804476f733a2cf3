package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunTwiceKeepsTheFirstEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "quickstart.db")
	var first, second bytes.Buffer
	if err := run(context.Background(), &first, path); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), &second, path); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first.String(), "Appended event 0") || strings.Contains(first.String(), "visitor 2") {
		t.Errorf("first run:\n%s", first.String())
	}
	for _, want := range []string{"Appended event 1", "#0", "visitor 1", "#1", "visitor 2"} {
		if !strings.Contains(second.String(), want) {
			t.Errorf("second run lacks %q:\n%s", want, second.String())
		}
	}
}
