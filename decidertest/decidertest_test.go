package decidertest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/decidertest"
)

// A counter that refuses to go below zero.
type (
	counter int
	change  struct{ By int }
	changed struct{ By int }
)

var errBelowZero = errors.New("counter: below zero")

var decider = eventstore.Decider[counter, change, changed]{
	Decide: func(s counter, c change) ([]changed, error) {
		if int(s)+c.By < 0 {
			return nil, fmt.Errorf("change by %d: %w", c.By, errBelowZero)
		}
		if c.By == 0 {
			return nil, nil
		}
		return []changed{{c.By}}, nil
	},
	Evolve: func(s counter, e changed) counter { return s + counter(e.By) },
}

// fakeTB records what a test reports.
type fakeTB struct {
	testing.TB // nil: a method not overridden here panics
	errors     []string
	fatals     []string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
}

func TestSpec_Passes(t *testing.T) {
	spec := decidertest.For(t, decider)
	spec.When(change{By: 2}).Then(changed{2})
	spec.Given(changed{2}, changed{3}).When(change{By: -5}).Then(changed{-5})
	spec.Given(changed{2}).When(change{By: 0}).Then()
	spec.Given(changed{2}).When(change{By: -3}).ThenError(errBelowZero)
	base := spec.Given(changed{1})
	base.Given(changed{1}).When(change{By: -2}).Then(changed{-2}) // Given adds to Given
	base.When(change{By: -2}).ThenError(errBelowZero)             // and leaves base as it was
}

func TestSpec_FailsWhenEventsDiffer(t *testing.T) {
	f := &fakeTB{}
	decidertest.For(f, decider).Given(changed{2}).When(change{By: 3}).Then(changed{4})
	if len(f.errors) != 1 || len(f.fatals) != 0 {
		t.Fatalf("errors %q, fatals %q; want one error", f.errors, f.fatals)
	}
	want := `given:
    decidertest_test.changed{By:2}
when decidertest_test.change{By:3}
events differ (-want +got):
- decidertest_test.changed{By:4}
+ decidertest_test.changed{By:3}
`
	if f.errors[0] != want {
		t.Errorf("reported:\n%s\nwant:\n%s", f.errors[0], want)
	}
}

func TestSpec_FailsOnExtraOrMissingEvents(t *testing.T) {
	f := &fakeTB{}
	spec := decidertest.For(f, decider)
	spec.When(change{By: 1}).Then()                       // one extra
	spec.When(change{By: 0}).Then(changed{0})             // one missing
	spec.When(change{By: 1}).Then(changed{1}, changed{1}) // the second missing
	if len(f.errors) != 3 {
		t.Fatalf("errors %q; want 3", f.errors)
	}
	for i, want := range []string{
		"events differ (-want +got):\n+ decidertest_test.changed{By:1}\n",
		"events differ (-want +got):\n- decidertest_test.changed{By:0}\n",
		"events differ (-want +got):\n  decidertest_test.changed{By:1}\n- decidertest_test.changed{By:1}\n",
	} {
		if !strings.HasSuffix(f.errors[i], want) {
			t.Errorf("report %d:\n%s\nwant it to end with:\n%s", i, f.errors[i], want)
		}
	}
	if !strings.HasPrefix(f.errors[0], "given no events\nwhen decidertest_test.change{By:1}\n") {
		t.Errorf("report 0 does not describe the scenario:\n%s", f.errors[0])
	}
}

func TestSpec_FailsOnErrors(t *testing.T) {
	f := &fakeTB{}
	spec := decidertest.For(f, decider)
	spec.When(change{By: -1}).Then(changed{-1})          // an error where events were wanted
	spec.When(change{By: 1}).ThenError(errBelowZero)     // events where an error was wanted
	spec.When(change{By: -1}).ThenError(errors.New("x")) // another error
	spec.When(change{By: -1}).ThenError(nil)             // a misuse
	if len(f.errors) != 3 || len(f.fatals) != 1 {
		t.Fatalf("errors %q, fatals %q; want 3 and 1", f.errors, f.fatals)
	}
	for i, want := range []string{
		"want 1 event, got error: change by -1: counter: below zero",
		"want error \"counter: below zero\", got 1 event:\n+ decidertest_test.changed{By:1}\n",
		"want error \"x\", got error \"change by -1: counter: below zero\"",
	} {
		if !strings.HasSuffix(f.errors[i], want) {
			t.Errorf("report %d:\n%s\nwant it to end with:\n%s", i, f.errors[i], want)
		}
	}
}

func TestDiff(t *testing.T) {
	got := decidertest.Diff([]changed{{1}, {2}, {3}}, []changed{{1}, {5}, {3}, {4}})
	want := "  decidertest_test.changed{By:1}\n- decidertest_test.changed{By:2}\n+ decidertest_test.changed{By:5}\n  decidertest_test.changed{By:3}\n+ decidertest_test.changed{By:4}\n"
	if got != want {
		t.Errorf("Diff:\n%s\nwant:\n%s", got, want)
	}
	if got := decidertest.Diff[changed](nil, nil); got != "  (no events)\n" {
		t.Errorf("Diff of nothing: %q", got)
	}
}
