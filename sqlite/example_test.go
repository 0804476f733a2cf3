package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

// A durable store: open (or create) a file, append, read back. SyncFull
// makes every commit survive a power cut, for a device on an SD card.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "eventstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	backend, err := sqlite.Open(filepath.Join(dir, "device.db"), &sqlite.Options{Synchronous: sqlite.SyncFull})
	if err != nil {
		log.Fatal(err)
	}
	store := eventstore.New(backend, nil) // the store closes the backend
	defer store.Close()

	ctx := context.Background()
	res, err := store.Append(ctx, "sensor-7", eventstore.NoStream,
		eventstore.Event{Type: "Reading", Data: []byte(`{"celsius":21.5}`)},
		eventstore.Event{Type: "Reading", Data: []byte(`{"celsius":22.0}`)},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("appended up to version %d, position %d\n", res.Version, res.Position)

	for e, err := range store.ReadStream(ctx, "sensor-7", eventstore.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s@%d %s %s\n", e.StreamID, e.Version, e.Type, e.Data)
	}
	// Output:
	// appended up to version 1, position 2
	// sensor-7@0 Reading {"celsius":21.5}
	// sensor-7@1 Reading {"celsius":22.0}
}

// An online backup: writers may go on while it runs, and the copy opens
// like any store file.
func ExampleBackend_Backup() {
	dir, err := os.MkdirTemp("", "eventstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	backend, err := sqlite.Open(filepath.Join(dir, "device.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	store := eventstore.New(backend, nil)
	defer store.Close()
	ctx := context.Background()
	for _, stream := range []string{"order-1", "order-2", "order-1"} {
		if _, err := store.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: "Touched"}); err != nil {
			log.Fatal(err)
		}
	}

	copyPath := filepath.Join(dir, "backup.db")
	if err := backend.Backup(ctx, copyPath); err != nil {
		log.Fatal(err)
	}

	copied, err := sqlite.Open(copyPath, &sqlite.Options{ReadOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	backup := eventstore.New(copied, nil)
	defer backup.Close()
	for info, err := range backup.ListStreams(ctx, eventstore.ListOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s at version %d\n", info.ID, info.Version)
	}
	// Output:
	// order-1 at version 1
	// order-2 at version 0
}
