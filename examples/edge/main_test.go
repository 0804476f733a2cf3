package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestRun runs the device through an outage while it writes continuously
// into a store of fixed size: every event it wrote reached the central
// stream, once, so none was pruned before the forwarder shipped it; the
// prune during the outage kept the unshipped expired events; the store
// ends with the newest readings of each sensor; and it never took more than
// its budget on the disk.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	rep, err := run(context.Background(), &out, t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("%+v\n%s", rep, out.String())
	if rep.Appended != 3*perPhase {
		t.Errorf("appended %d, want %d", rep.Appended, 3*perPhase)
	}
	if rep.Central != uint64(rep.Appended) || rep.LastCentral != rep.Appended {
		t.Errorf("central holds %d messages up to position %d for %d events appended", rep.Central, rep.LastCentral, rep.Appended)
	}
	if rep.PrunedBehind != 0 {
		t.Errorf("the forwarder found %d events pruned before it shipped them", rep.PrunedBehind)
	}
	if rep.KeptBack == 0 {
		t.Error("the prune during the outage kept nothing back")
	}
	if rep.Stored != sensors*keep {
		t.Errorf("the store keeps %d events, want %d", rep.Stored, sensors*keep)
	}
	if rep.MaxOnDisk <= 0 || rep.MaxOnDisk > budget {
		t.Errorf("the store took up to %d bytes on the disk, budget %d", rep.MaxOnDisk, budget)
	}
	for _, want := range []string{
		fmt.Sprintf("shipped up to position %d", perPhase),
		"Central server down",
		"failed attempts so far",
		"expired readings kept back",
		"backlog drained",
		fmt.Sprintf("holds %d messages for %[1]d events", 3*perPhase),
		fmt.Sprintf("#%d", 3*perPhase),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
