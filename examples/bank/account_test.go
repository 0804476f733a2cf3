package main

import (
	"testing"

	"github.com/edge-es/eventstore/decidertest"
)

// The account's rules, tested on the decider alone: given these events,
// when this command, then these events or this error.

func TestAccount_Open(t *testing.T) {
	account := decidertest.For(t, Decider)
	account.When(Open{Holder: "Ann"}).Then(Opened{Owner: "Ann"})
	account.When(Open{}).ThenError(ErrOwnerMissing)
	account.Given(Opened{Owner: "Ann"}).When(Open{Holder: "Bob"}).ThenError(ErrAlreadyOpened)
}

func TestAccount_Deposit(t *testing.T) {
	account := decidertest.For(t, Decider)
	account.When(Deposit{Amount: 10_00}).ThenError(ErrNotOpened)
	opened := account.Given(Opened{Owner: "Ann"})
	opened.When(Deposit{Amount: 10_00}).Then(Deposited{Cents: 10_00})
	opened.When(Deposit{Amount: 0}).ThenError(ErrNotPositive)
	opened.When(Deposit{Amount: -5_00}).ThenError(ErrNotPositive)
}

func TestAccount_Withdraw(t *testing.T) {
	account := decidertest.For(t, Decider)
	funded := account.Given(Opened{Owner: "Ann"}, Deposited{Cents: 100_00}, Withdrawn{Cents: 30_00})
	funded.When(Withdraw{Amount: 70_00}).Then(Withdrawn{Cents: 70_00}) // down to zero
	funded.When(Withdraw{Amount: 70_01}).ThenError(ErrOverdraft)
	funded.When(Withdraw{Amount: -1}).ThenError(ErrNotPositive)
	account.When(Withdraw{Amount: 1}).ThenError(ErrNotOpened)
}
