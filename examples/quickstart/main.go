// Quickstart opens (or creates) quickstart.db in the working directory,
// appends one event to a guestbook stream and prints the whole stream. Run
// it twice: the second run finds the first run's entry in the file.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

func main() {
	if err := run(context.Background(), os.Stdout, "quickstart.db"); err != nil {
		log.Fatal(err)
	}
}

type signed struct {
	Name string `json:"name"`
}

func run(ctx context.Context, out io.Writer, path string) error {
	backend, err := sqlite.Open(path, nil)
	if err != nil {
		return err
	}
	store := eventstore.New(backend, nil)
	defer store.Close()

	const stream = "guestbook-main"
	// Optimistic concurrency: append only if nobody else wrote since we
	// looked. StreamVersion is -1 for a new stream, which Exact accepts.
	version, err := store.StreamVersion(ctx, stream)
	if err != nil {
		return err
	}
	data, err := json.Marshal(signed{Name: fmt.Sprintf("visitor %d", version+2)})
	if err != nil {
		return err
	}
	res, err := store.Append(ctx, stream, eventstore.Exact(version), eventstore.Event{Type: "Signed", Data: data})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Appended event %d to %s in %s (global position %d).\n\n", res.Version, stream, path, res.Position)

	fmt.Fprintln(out, "The guestbook so far:")
	for e, err := range store.ReadStream(ctx, stream, eventstore.ReadOptions{}) {
		if err != nil {
			return err
		}
		var s signed
		if err := json.Unmarshal(e.Data, &s); err != nil {
			return err
		}
		fmt.Fprintf(out, "  #%d  %s  %-6s  %s\n", e.Version, e.RecordedAt.Local().Format("2006-01-02 15:04:05"), e.Type, s.Name)
	}
	fmt.Fprintf(out, "\nRun it again: the entries above are stored in %s.\n", path)
	return nil
}
