// Command eventstore inspects and maintains an eventstore SQLite file,
// including one that an application has open.
//
//	go install github.com/edge-es/eventstore/cmd/eventstore@latest
//
// Usage:
//
//	eventstore streams        FILE [-prefix P] [-category C] [-after ID] [-limit N] [-json]
//	eventstore read           FILE STREAM [-from N] [-limit N] [-backward] [-json]
//	eventstore tail           FILE [-from N | -all] [-stream S] [-category C] [-type T] [-json]
//	eventstore stats          FILE [-json]
//	eventstore verify         FILE [-json]
//	eventstore snapshots      FILE STREAM [-json]
//	eventstore consumers      FILE [-json]
//	eventstore parked         FILE NAME [-retry POS | -drop POS] [-json]
//	eventstore reset-consumer FILE NAME [-from POS]
//	eventstore backup         FILE DEST
//	eventstore vacuum         FILE
//	eventstore retention      FILE [STREAM | -category C] [-max-age AGE] [-max-count N] [-truncate-before V] [-clear] [-json]
//	eventstore prune          FILE [-after NAMES] [-batch N]
//	eventstore export         FILE [-o OUT]
//	eventstore import         FILE [-i IN] [-batch N] [-tx N]
//	eventstore serve          FILE [-addr HOST:PORT] [-token T]
//	eventstore --version
//
// 'eventstore COMMAND -h' describes a command, its arguments and flags,
// with an example. Flags may come before, between or after the arguments;
// after "--" everything is an argument (a stream ID that starts with "-").
//
// The reading commands (streams, read, tail, stats, verify, snapshots,
// consumers, parked without -retry or -drop, backup, export, serve) open the
// file read-only: they never write to it (backup writes only DEST), and
// run beside an application that has it open. reset-consumer and parked
// -retry or -drop write a consumer's records, and refuse while that
// consumer runs. vacuum rewrites the whole file, and refuses while any
// process has it open. retention reads, or writes a policy when it sets
// one; prune writes, beside an application that has the file open.
// import creates FILE if needed.
//
// Tables show times in the local time zone, with its offset (TZ=UTC for
// UTC). With -json, streams, read, tail, snapshots, consumers, parked and
// retention print one JSON object a line (JSON Lines), and stats and
// verify print one object; times are RFC 3339 in UTC. While export, import
// or prune runs with stderr on a terminal, a progress bar with rate and
// time left shows there.
//
// Exit status: 0 on success, 1 when verify finds problems or a command
// fails, 2 for a usage error (an unknown command or flag, a missing
// argument, a flag value out of range, import with a terminal as input),
// 130 when interrupted.
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
	"runtime/debug"
	"syscall"

	"golang.org/x/term"
)

// command is one subcommand, and its help.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string // what it does, in one line
	params  string // its arguments, one a line, for -h
	about   string // more on what it does, for -h; may be empty
	example string // one or more command lines, for -h
	more    string // printed after the example (the export format)
	run     func(ctx context.Context, e *env, args []string) error
}

// env is what a command reads and writes: the process's streams, or a
// test's.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stdinTerminal  bool // stdin is a terminal: nobody pipes anything in
	progress       bool // draw progress bars on stderr (a terminal)
}

func commands() []command {
	return []command{
		{name: "streams", args: "FILE [-prefix P] [-category C] [-after ID] [-limit N] [-json]",
			summary: "list the streams with their versions",
			params:  "FILE  the store file (opened read-only)",
			example: "eventstore streams gateway.db -category order -limit 20",
			run:     cmdStreams},
		{name: "read", args: "FILE STREAM [-from N] [-limit N] [-backward] [-json]",
			summary: "print the events of a stream",
			params:  "FILE    the store file (opened read-only)\nSTREAM  the stream ID (after -- when it starts with -)",
			example: "eventstore read gateway.db order-42 -backward -limit 5",
			run:     cmdRead},
		{name: "tail", args: "FILE [-from N | -all] [-stream S] [-category C] [-type T] [-json]",
			summary: "follow the global log live, including appends by other processes",
			params:  "FILE  the store file (opened read-only)",
			about:   "Without -from or -all it prints only events appended from now on. It runs\nuntil interrupted (Ctrl-C).",
			example: "eventstore tail gateway.db -category order -json",
			run:     cmdTail},
		{name: "stats", args: "FILE [-json]",
			summary: "count events, streams, snapshots and consumers",
			params:  "FILE  the store file (opened read-only)",
			example: "eventstore stats gateway.db",
			run:     cmdStats},
		{name: "verify", args: "FILE [-json]",
			summary: "check integrity, order and versions (exit 1 on a problem)",
			params:  "FILE  the store file (opened read-only)",
			about:   "It lists the checks it ran and the ones it skipped, then every problem it\nfound. The exit status is 0 only when it ran every check and found nothing.",
			example: "eventstore verify gateway.db",
			run:     cmdVerify},
		{name: "snapshots", args: "FILE STREAM [-json]",
			summary: "list the snapshots of a stream",
			params:  "FILE    the store file (opened read-only)\nSTREAM  the stream ID",
			example: "eventstore snapshots gateway.db order-42",
			run:     cmdSnapshots},
		{name: "consumers", args: "FILE [-json]",
			summary: "list consumers and forwarders with their checkpoints, lag and parked events",
			params:  "FILE  the store file (opened read-only)",
			about:   "A member of a consumer group is listed as NAME[MEMBER/SIZE], a forwarder as\noutbox/NAME.",
			example: "eventstore consumers gateway.db",
			run:     cmdConsumers},
		{name: "parked", args: "FILE NAME [-retry POS | -drop POS] [-json]",
			summary: "list a consumer's parked events, or retry or drop one",
			params:  "FILE  the store file (read-only unless -retry or -drop)\nNAME  the consumer, as 'eventstore consumers' lists it (NAME[MEMBER/SIZE]\n      for a member of a group)",
			about: "A consumer parks an event after ParkAfter failed attempts and goes on.\n" +
				"-retry POS has the consumer handle it again, first thing when it next\n" +
				"starts (ATTEMPTS shows 0 until then); -drop POS forgets it. Both refuse\n" +
				"while the consumer runs: stop it first.",
			example: "eventstore parked gateway.db projector\neventstore parked gateway.db projector -retry 1234",
			run:     cmdParked},
		{name: "reset-consumer", args: "FILE NAME [-from POS]",
			summary: "move a consumer's checkpoint, to replay or skip events",
			params:  "FILE  the store file (written)\nNAME  the consumer, as 'eventstore consumers' lists it; a group's name resets\n      every member",
			about: "The consumer handles the events from position POS on when it next starts\n" +
				"(-from 0 or 1: the whole log, to rebuild a projection) and forgets which\n" +
				"events it had marked processed. It refuses while the consumer runs (stop it\n" +
				"first), and a NAME that has no checkpoint (a typo would create one).",
			example: "eventstore reset-consumer gateway.db projector -from 0",
			run:     cmdResetConsumer},
		{name: "backup", args: "FILE DEST",
			summary: "copy the store to a new file DEST while it is in use",
			params:  "FILE  the store file (opened read-only)\nDEST  the copy, a new file (it must not exist)",
			example: "eventstore backup gateway.db /backups/gateway-2026-11-26.db",
			run:     cmdBackup},
		{name: "vacuum", args: "FILE",
			summary: "rebuild the file to give the space of deleted data back (SQLite VACUUM)",
			params:  "FILE  the store file (rewritten)",
			about: "It prints the file's size before and after. It needs the file to itself:\n" +
				"it refuses while any other process has it open (stop the application\n" +
				"first), and an application that opens the file meanwhile waits or fails.\n" +
				"It needs free space about the size of the file. To compact a store that\n" +
				"must stay in use, back it up instead: the copy is compacted.\n" +
				"It also converts a file made by a release before incremental vacuum, once:\n" +
				"from then on the store gives the space of pruned and purged events back\n" +
				"while in use (new files are made that way).",
			example: "eventstore vacuum gateway.db",
			run:     cmdVacuum},
		{name: "retention", args: "FILE [STREAM | -category C] [-max-age AGE] [-max-count N] [-truncate-before V] [-clear] [-json]",
			summary: "show the retention policies, or set the policy of a stream or a category",
			params:  "FILE    the store file (read-only unless a policy is set)\nSTREAM  the stream whose policy to show or set",
			about:   retentionAbout,
			example: "eventstore retention gateway.db\neventstore retention gateway.db -category reading -max-age 30d\neventstore retention gateway.db order-42 -max-count 1000",
			run:     cmdRetention},
		{name: "prune", args: "FILE [-after NAMES] [-batch N]",
			summary: "remove the expired events from the file, and give their space back",
			params:  "FILE  the store file (written)",
			about: "It removes what the retention policies expire, in short transactions, while\n" +
				"applications go on writing, then gives the space back to the file system.\n" +
				"With -after, an event is removed only once every named forwarder (by its\n" +
				"name, without outbox/) and consumer has passed it: what a device has not\n" +
				"shipped stays. A name that has no checkpoint is refused.",
			example: "eventstore prune gateway.db -after central",
			run:     cmdPrune},
		{name: "export", args: "FILE [-o OUT]",
			summary: "write every event and stream deletion as JSON Lines (to stdout by default)",
			params:  "FILE  the store file (opened read-only)",
			example: "eventstore export gateway.db -o gateway.jsonl\neventstore export old.db | eventstore import new.db",
			more:    formatHelp,
			run:     cmdExport},
		{name: "import", args: "FILE [-i IN] [-batch N] [-tx N]",
			summary: "apply an export to FILE (stdin by default); safe to run again after an interruption",
			params:  "FILE  the store file (created if needed)",
			example: "eventstore import new.db -i gateway.jsonl",
			more:    formatHelp,
			run:     cmdImport},
		{name: "serve", args: "FILE [-addr HOST:PORT] [-token T]",
			summary: "serve a read-only web inspector of the store (loopback by default)",
			params:  "FILE  the store file (opened read-only)",
			about: "Overview, streams, events, the global log, a live tail, consumers and\n" +
				"Verify, in a browser; it runs until interrupted. It listens on loopback\n" +
				"only unless -addr says otherwise, which needs -token. Reach a device's\n" +
				"inspector with: ssh -L 7070:127.0.0.1:7070 device",
			example: "eventstore serve gateway.db\neventstore serve gateway.db -addr 0.0.0.0:7070 -token \"$(openssl rand -hex 16)\"",
			run:     cmdServe},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		stdinTerminal: term.IsTerminal(int(os.Stdin.Fd())),
		progress:      term.IsTerminal(int(os.Stderr.Fd())),
	}
	os.Exit(run(ctx, e, os.Args[1:]))
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(e.stdout)
		return 0
	case "-version", "--version", "version":
		fmt.Fprintln(e.stdout, version())
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
		case errors.Is(err, errHelp):
			return 0
		case errors.Is(err, errUsage):
			if msg := err.Error(); msg != errUsage.Error() {
				fmt.Fprintf(e.stderr, "eventstore %s: %s\n", c.name, msg)
			}
			fmt.Fprintf(e.stderr, "usage: eventstore %s %s\nRun 'eventstore %s -h' for help.\n", c.name, c.args, c.name)
			return 2
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
	fmt.Fprintln(w, "\nUsage: eventstore COMMAND FILE [args] [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'eventstore COMMAND -h' for a command's arguments, flags and an example,")
	fmt.Fprintln(w, "'eventstore --version' for the version.")
}

// version describes the build from its build info: the module version
// (a release, or "(devel)" for a build from a checkout), the VCS revision
// when the build recorded one, and the Go version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "eventstore (unknown version: no build info)"
	}
	v := "eventstore " + bi.Main.Version
	if v == "eventstore " {
		v += "(devel)"
	}
	var rev, modified, at string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		case "vcs.time":
			at = ", " + s.Value
		}
	}
	if rev != "" {
		v += " (revision " + rev + at + modified + ")"
	}
	return v + " " + bi.GoVersion
}
