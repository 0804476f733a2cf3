// Package decidertest tests an [eventstore.Decider] without a store, in
// the given-when-then style of Emmett's and Gleam's decider tests: given
// the events an aggregate has, when it gets a command, then it decides
// these events, or fails with this error.
//
//	func TestWithdraw(t *testing.T) {
//		spec := decidertest.For(t, account.Decider)
//		spec.Given(Opened{Owner: "ann"}, Deposited{Cents: 100}).
//			When(Withdraw{Amount: 30}).
//			Then(Withdrawn{Cents: 30})
//		spec.Given(Opened{Owner: "ann"}).
//			When(Withdraw{Amount: 30}).
//			ThenError(ErrOverdraft)
//	}
//
// A failure is reported with the test's Errorf, as a diff of the events
// wanted and decided, one event a line. It lives apart from package
// eventstoretest, the backends' conformance suite, so that domain tests
// import nothing but the decider's own package and this one.
package decidertest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/edge-es/eventstore"
)

// Spec is a decider under test. Its methods return values, so one Spec
// serves any number of scenarios.
type Spec[S, C, E any] struct {
	tb      testing.TB
	decider eventstore.Decider[S, C, E]
	given   []E
}

// For returns a Spec of decider that reports to tb.
func For[S, C, E any](tb testing.TB, decider eventstore.Decider[S, C, E]) Spec[S, C, E] {
	return Spec[S, C, E]{tb: tb, decider: decider}
}

// Given returns the Spec of an aggregate that has these events (after
// those of s, if any). Without Given, the aggregate is new.
func (s Spec[S, C, E]) Given(events ...E) Spec[S, C, E] {
	s.given = append(s.given[:len(s.given):len(s.given)], events...)
	return s
}

// When folds the given events from the decider's initial state with
// Evolve, and decides cmd in that state.
func (s Spec[S, C, E]) When(cmd C) Outcome[S, C, E] {
	state := s.decider.Initial
	for _, e := range s.given {
		state = s.decider.Evolve(state, e)
	}
	events, err := s.decider.Decide(state, cmd)
	return Outcome[S, C, E]{spec: s, cmd: cmd, events: events, err: err}
}

// Outcome is what a command decided, to check with Then or ThenError.
type Outcome[S, C, E any] struct {
	spec   Spec[S, C, E]
	cmd    C
	events []E
	err    error
}

// Then checks that the command succeeded with exactly these events, in
// this order (compared with [reflect.DeepEqual]); no events: that it
// decided nothing.
func (o Outcome[S, C, E]) Then(want ...E) {
	o.spec.tb.Helper()
	if o.err != nil {
		o.spec.tb.Errorf("%s\nwant %s, got error: %v", o.scenario(), count(len(want)), o.err)
		return
	}
	if !equal(want, o.events) {
		o.spec.tb.Errorf("%s\nevents differ (-want +got):\n%s", o.scenario(), Diff(want, o.events))
	}
}

// ThenError checks that the command failed with an error that matches
// target with [errors.Is].
func (o Outcome[S, C, E]) ThenError(target error) {
	o.spec.tb.Helper()
	switch {
	case target == nil:
		o.spec.tb.Fatalf("decidertest: ThenError(nil): use Then() for a command that succeeds")
	case o.err == nil:
		o.spec.tb.Errorf("%s\nwant error %q, got %s:\n%s", o.scenario(), target, count(len(o.events)), Diff(nil, o.events))
	case !errors.Is(o.err, target):
		o.spec.tb.Errorf("%s\nwant error %q, got error %q", o.scenario(), target, o.err)
	}
}

// scenario describes the test case for a failure message.
func (o Outcome[S, C, E]) scenario() string {
	var b strings.Builder
	if len(o.spec.given) == 0 {
		b.WriteString("given no events")
	} else {
		b.WriteString("given:")
		for _, e := range o.spec.given {
			b.WriteString("\n    " + show(e))
		}
	}
	b.WriteString("\nwhen " + show(o.cmd))
	return b.String()
}

func count(n int) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
}

func equal[E any](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// show prints a value on one line with its type: "bank.Deposited{Cents:100}".
func show(v any) string {
	return fmt.Sprintf("%T%+v", v, v)
}

// Diff returns a line diff of two lists of events, one event a line as
// "%T%+v" prints it: "  " before an event in both, "- " before one only in
// want, "+ " before one only in got. It is what Then reports.
func Diff[E any](want, got []E) string {
	// The longest common subsequence, by reflect.DeepEqual; lists of
	// events in a test are short.
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if reflect.DeepEqual(want[i], got[j]) {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && reflect.DeepEqual(want[i], got[j]):
			b.WriteString("  " + show(want[i]) + "\n")
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			b.WriteString("- " + show(want[i]) + "\n")
			i++
		default:
			b.WriteString("+ " + show(got[j]) + "\n")
			j++
		}
	}
	if b.Len() == 0 {
		return "  (no events)\n"
	}
	return b.String()
}
