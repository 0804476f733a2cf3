// Command eventstore inspects and maintains an eventstore SQLite file,
// including one that an application has open.
//
//	go install github.com/edge-es/eventstore/cmd/eventstore@latest
//
// Usage:
//
//	eventstore streams   [-prefix P] [-category C] [-limit N] FILE
//	eventstore read      [-from N] [-limit N] [-backward] [-json] FILE STREAM
//	eventstore tail      [-from N|-all] [-category C] [-type T] [-stream S] [-json] FILE
//	eventstore stats     FILE
//	eventstore verify    FILE
//	eventstore snapshots FILE STREAM
//	eventstore consumers FILE
//	eventstore backup    FILE DEST
//	eventstore export    [-o OUT] FILE
//	eventstore import    [-i IN] [-batch N] [-tx N] FILE
//
// Every command but import opens the file read-only: it never writes to
// it (backup writes only DEST). Exit status: 0 on success, 1 when verify
// finds problems or a command fails, 2 for a usage error.
//
// Export and import copy a store's events through a versioned JSON Lines
// format that keeps event IDs, versions, types, data and metadata byte
// for byte, and stream deletions; import is idempotent, so an interrupted
// import is finished by running it again. 'eventstore export -h'
// describes the format.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name, args, help string
	run              func(ctx context.Context, env *env, args []string) error
}

// env is what a command reads and writes: the process's streams, or a
// test's.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	progress       bool // print progress on stderr (a terminal)
}

// errUsage marks a usage error: exit status 2.
var errUsage = errors.New("usage")

func commands() []command {
	return []command{
		{"streams", "[-prefix P] [-category C] [-after ID] [-limit N] FILE", "list the streams with their versions", cmdStreams},
		{"read", "[-from N] [-limit N] [-backward] [-json] FILE STREAM", "print the events of a stream", cmdRead},
		{"tail", "[-from N | -all] [-stream S] [-category C] [-type T] [-json] FILE", "follow the global log live, including appends by other processes", cmdTail},
		{"stats", "FILE", "count events, streams, snapshots and consumers", cmdStats},
		{"verify", "FILE", "check integrity, order and versions (exit 1 on a problem)", cmdVerify},
		{"snapshots", "FILE STREAM", "list the snapshots of a stream", cmdSnapshots},
		{"consumers", "FILE", "list consumers and forwarders with their checkpoints and lag", cmdConsumers},
		{"backup", "FILE DEST", "copy the store to a new file DEST while it is in use", cmdBackup},
		{"export", "[-o OUT] FILE", "write every event and stream deletion as JSON Lines (to stdout by default)", cmdExport},
		{"import", "[-i IN] [-batch N] [-tx N] FILE", "apply an export to FILE (stdin by default); safe to run again after an interruption", cmdImport},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fi, err := os.Stderr.Stat()
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, progress: err == nil && fi.Mode()&os.ModeCharDevice != 0}
	os.Exit(run(ctx, e, os.Args[1:]))
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(e.stderr, "usage: eventstore %s %s\n", c.name, c.args)
			return 2
		case errors.Is(err, errHelp):
			return 0
		case errors.Is(err, context.Canceled):
			return 130
		default:
			fmt.Fprintf(e.stderr, "eventstore %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "eventstore: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "eventstore inspects and maintains an eventstore SQLite file.")
	fmt.Fprintln(w, "\nUsage: eventstore COMMAND [flags] FILE [args]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.help)
	}
	fmt.Fprintln(w, "\nRun 'eventstore COMMAND -h' for a command's flags. Only import writes to FILE.")
}
