package memory

import "errors"

// ErrTxDone is the error of a write made with the context of a
// transaction that has already committed or rolled back.
var ErrTxDone = errors.New("eventstore/memory: the transaction has ended")
