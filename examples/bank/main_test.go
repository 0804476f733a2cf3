package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	var first, second bytes.Buffer
	if err := run(context.Background(), &first, path); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), &second, path); err != nil {
		t.Fatal(err)
	}
	expect := func(name, out string, lines ...string) {
		t.Helper()
		for _, want := range lines {
			if !strings.Contains(out, want) {
				t.Errorf("%s run lacks %q:\n%s", name, want, out)
			}
		}
	}
	expect("first", first.String(),
		"account-ann: withdraw 30.00          ok       balance    70.00",
		"account-ann: deposit -5.00           refused  amount must be positive",
		"account-ann: withdraw 500.00         refused  insufficient funds (balance 70.00)",
		"account-bob: deposit 10.00           refused  account not opened",
		"account-ann    3 events, snapshot none yet",
		"account-ann  Ann     70.00",
		"account-bob  Bob     42.50",
	)
	expect("second", second.String(),
		"account-ann: open for Ann            refused  account already opened",
		"account-ann: withdraw 30.00          ok       balance   140.00  (version 4)",
		"account-ann    5 events, snapshot at version 4",
		"account-ann  Ann    140.00", // the read model followed, once per event
		"account-bob  Bob     95.00",
	)
}
