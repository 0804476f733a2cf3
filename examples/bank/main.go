// Bank is the main example: bank accounts as event-sourced aggregates on a
// SQLite file, with domain errors (recognised by eventstore.ErrRejected),
// snapshots, and a balance read model kept by an exactly-once consumer
// whose handlers a Router calls by event type. The read model lives in the
// store's file: its table is created in the store's transaction, read with
// the backend's Read, and Store.WaitFor makes the reads see the commands
// just executed (read-your-writes). The decider's own tests, in
// account_test.go, need no store. Run it twice: the second run carries on
// from the first.
//
//	go run ./examples/bank
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/jmoiron/sqlx"
)

func main() {
	if err := run(context.Background(), os.Stdout, "bank.db"); err != nil {
		log.Fatal(err)
	}
}

// snapshotEvery is small so that a short run shows snapshots at work.
const snapshotEvery = 5

func run(ctx context.Context, out io.Writer, path string) error {
	backend, err := sqlite.Open(path, nil)
	if err != nil {
		return err
	}
	store := eventstore.New(backend, nil)
	defer store.Close()
	registry, err := NewRegistry()
	if err != nil {
		return err
	}
	accounts := eventstore.NewRepository(store, Decider, eventstore.RegistryCodec[Event](registry),
		&eventstore.RepositoryOptions[Account]{SnapshotEvery: snapshotEvery})

	// The read model lives in the same file, in a table of its own.
	err = store.Transact(ctx, func(ctx context.Context) error {
		_, err := sqlite.Tx(ctx).ExecContext(ctx, `CREATE TABLE IF NOT EXISTS balances (
			account TEXT PRIMARY KEY, owner TEXT NOT NULL, cents INTEGER NOT NULL)`)
		return err
	})
	if err != nil {
		return err
	}
	stopProjection := project(ctx, store, registry)

	fmt.Fprintf(out, "Bank accounts in %s\n\n", path)
	steps := []struct {
		who, account string
		cmd          any
	}{
		{"ann", "account-ann", Open{Holder: "Ann"}},
		{"ann", "account-ann", Deposit{Amount: 100_00}},
		{"ann", "account-ann", Withdraw{Amount: 30_00}},
		{"ann", "account-ann", Deposit{Amount: -5_00}},
		{"ann", "account-ann", Withdraw{Amount: 500_00}},
		{"bob", "account-bob", Deposit{Amount: 10_00}},
		{"bob", "account-bob", Open{Holder: "Bob"}},
		{"bob", "account-bob", Deposit{Amount: 42_50}},
	}
	var written int64 // the position of the last event the commands wrote
	for _, s := range steps {
		res, err := accounts.Execute(ctx, s.account, s.cmd, eventstore.Metadata{"user": s.who})
		what := fmt.Sprintf("%s: %s", s.account, describe(s.cmd))
		switch {
		case err == nil:
			written = max(written, res.Position)
			fmt.Fprintf(out, "  %-36s ok       balance %8s  (version %d)\n", what, money(res.State.Balance), res.Version)
		case errors.Is(err, eventstore.ErrRejected): // a domain error: ErrOverdraft, ...
			fmt.Fprintf(out, "  %-36s refused  %v\n", what, err)
		default:
			return err
		}
	}

	fmt.Fprintf(out, "\nSnapshots (one every %d events):\n", snapshotEvery)
	for _, id := range []string{"account-ann", "account-bob"} {
		info, err := accounts.Info(ctx, id)
		if err != nil {
			return err
		}
		snap := "none yet"
		if info.HasSnapshot {
			snap = fmt.Sprintf("at version %d", info.SnapshotVersion)
		}
		fmt.Fprintf(out, "  %-12s %3d events, snapshot %s\n", id, info.Events, snap)
	}

	// Read-your-writes: the read model has handled every command above.
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := store.WaitFor(waitCtx, "balances", written); err != nil {
		return fmt.Errorf("the projection did not catch up: %w", err)
	}
	stopProjection()
	fmt.Fprintln(out, "\nBalances read model (kept by a consumer, exactly once):")
	var rows []struct {
		Account string
		Owner   string
		Cents   int64
	}
	err = backend.Read(ctx, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `SELECT account, owner, cents FROM balances ORDER BY account`)
	})
	if err != nil {
		return err
	}
	for _, r := range rows {
		fmt.Fprintf(out, "  %-12s %-4s %8s\n", r.Account, r.Owner, money(r.Cents))
	}
	fmt.Fprintf(out, "\nRun it again: the accounts in %s carry on from here.\n", path)
	return nil
}

func describe(cmd any) string {
	switch c := cmd.(type) {
	case Open:
		return "open for " + c.Holder
	case Deposit:
		return "deposit " + money(c.Amount)
	case Withdraw:
		return "withdraw " + money(c.Amount)
	}
	return fmt.Sprintf("%T", cmd)
}

// balances returns the handler of the balances projection: one function
// per event type, each writing in the consumer's transaction.
func balances(registry *eventstore.Registry) *eventstore.Router {
	r := eventstore.NewRouter(registry)
	eventstore.On(r, func(ctx context.Context, e Opened, meta eventstore.RecordedEvent) error {
		_, err := sqlite.Tx(ctx).ExecContext(ctx, `INSERT INTO balances VALUES (?, ?, 0)`, meta.StreamID, e.Owner)
		return err
	})
	eventstore.On(r, func(ctx context.Context, e Deposited, meta eventstore.RecordedEvent) error {
		_, err := sqlite.Tx(ctx).ExecContext(ctx, `UPDATE balances SET cents = cents + ? WHERE account = ?`, e.Cents, meta.StreamID)
		return err
	})
	eventstore.On(r, func(ctx context.Context, e Withdrawn, meta eventstore.RecordedEvent) error {
		_, err := sqlite.Tx(ctx).ExecContext(ctx, `UPDATE balances SET cents = cents - ? WHERE account = ?`, e.Cents, meta.StreamID)
		return err
	})
	return r
}

// project runs the balances projection: an exactly-once consumer whose
// table writes commit with its checkpoint. It returns a function that
// stops it and waits.
func project(ctx context.Context, store *eventstore.Store, registry *eventstore.Registry) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- store.Consume(ctx, eventstore.ConsumerOptions{
			Name:      "balances",
			Filter:    eventstore.Filter{Categories: []string{"account"}},
			TxHandler: balances(registry).Handle,
		})
	}()
	return func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			log.Print(err)
		}
	}
}
