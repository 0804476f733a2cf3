package main

import (
	"errors"
	"fmt"

	"github.com/edge-es/eventstore"
)

// The account aggregate: commands, events, state, and the decider that
// ties them together. Pure functions, no storage in sight.

// Domain errors: values a caller can test with errors.Is.
var (
	ErrNotPositive    = errors.New("amount must be positive")
	ErrOverdraft      = errors.New("insufficient funds")
	ErrNotOpened      = errors.New("account not opened")
	ErrAlreadyOpened  = errors.New("account already opened")
	ErrOwnerMissing   = errors.New("an account needs an owner")
	errUnknownCommand = errors.New("unknown command")
)

// Commands.
type (
	Open     struct{ Holder string }
	Deposit  struct{ Amount int64 } // cents
	Withdraw struct{ Amount int64 } // cents
)

// Events. Each validates itself: the registry refuses to append an invalid
// one, and checks stored ones as it decodes them.
type (
	Opened struct {
		Owner string `json:"owner"`
	}
	Deposited struct {
		Cents int64 `json:"cents"`
	}
	Withdrawn struct {
		Cents int64 `json:"cents"`
	}
)

// Validate requires an owner.
func (e Opened) Validate() error {
	if e.Owner == "" {
		return ErrOwnerMissing
	}
	return nil
}

// Validate requires a positive amount.
func (e Deposited) Validate() error { return positive(e.Cents) }

// Validate requires a positive amount.
func (e Withdrawn) Validate() error { return positive(e.Cents) }

func positive(cents int64) error {
	if cents <= 0 {
		return ErrNotPositive
	}
	return nil
}

// Event is any account event.
type Event interface{ isEvent() }

func (Opened) isEvent()    {}
func (Deposited) isEvent() {}
func (Withdrawn) isEvent() {}

// Account is the state of an account.
type Account struct {
	Open    bool   `json:"open"`
	Owner   string `json:"owner"`
	Balance int64  `json:"balance"` // cents
}

// Decider is the account's behaviour.
var Decider = eventstore.Decider[Account, any, Event]{
	Decide: func(a Account, cmd any) ([]Event, error) {
		switch c := cmd.(type) {
		case Open:
			if a.Open {
				return nil, ErrAlreadyOpened
			}
			if c.Holder == "" {
				return nil, ErrOwnerMissing
			}
			return []Event{Opened{Owner: c.Holder}}, nil
		case Deposit:
			if !a.Open {
				return nil, ErrNotOpened
			}
			if err := positive(c.Amount); err != nil {
				return nil, err
			}
			return []Event{Deposited{Cents: c.Amount}}, nil
		case Withdraw:
			if !a.Open {
				return nil, ErrNotOpened
			}
			if err := positive(c.Amount); err != nil {
				return nil, err
			}
			if c.Amount > a.Balance {
				return nil, fmt.Errorf("%w (balance %s)", ErrOverdraft, money(a.Balance))
			}
			return []Event{Withdrawn{Cents: c.Amount}}, nil
		}
		return nil, fmt.Errorf("%w: %T", errUnknownCommand, cmd)
	},
	Evolve: func(a Account, e Event) Account {
		switch e := e.(type) {
		case Opened:
			a.Open, a.Owner = true, e.Owner
		case Deposited:
			a.Balance += e.Cents
		case Withdrawn:
			a.Balance -= e.Cents
		}
		return a
	},
}

// NewRegistry maps the event types to their stored names.
func NewRegistry() (*eventstore.Registry, error) {
	r := eventstore.NewRegistry()
	return r, errors.Join(
		eventstore.Register[Opened](r, "AccountOpened"),
		eventstore.Register[Deposited](r, "MoneyDeposited"),
		eventstore.Register[Withdrawn](r, "MoneyWithdrawn"),
	)
}

func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}
