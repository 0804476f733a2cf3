package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

var (
	// errUsage marks a usage error: exit status 2.
	errUsage = errors.New("usage")
	// errHelp reports that -h was asked for and printed.
	errHelp = errors.New("help shown")
)

// usagef returns a usage error that says what is wrong.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Is(target error) bool {
	return target == errUsage
}

// newFlags returns the flag set of a command.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse returns the errors; help is printed by help
	fs.Usage = func() {}
	return fs
}

// parse parses a command's flags, which may come before, between and
// after its arguments, and checks it got want arguments. -h prints the
// command's help on stdout.
func parse(e *env, fs *flag.FlagSet, args []string, want int) ([]string, error) {
	pos, err := interleaved(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		help(e.stdout, fs)
		return nil, errHelp
	case err != nil:
		return nil, usagef("%v", err)
	case len(pos) < want:
		return nil, usagef("%d arguments, want %d", len(pos), want)
	case len(pos) > want:
		return nil, usagef("unexpected argument %q", pos[want])
	}
	return pos, nil
}

// interleaved parses args as the flag package does, but goes on past an
// argument that is not a flag: each one is taken as an argument, and the
// flags after it are parsed too. After "--" every word is an argument.
func interleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// help prints the -h text of the command whose flag set fs is.
func help(w io.Writer, fs *flag.FlagSet) {
	var c command
	for _, c = range commands() {
		if c.name == fs.Name() {
			break
		}
	}
	fmt.Fprintf(w, "usage: eventstore %s %s\n\n", c.name, c.args)
	fmt.Fprintf(w, "%s%s.\n", strings.ToUpper(c.summary[:1]), c.summary[1:])
	if c.about != "" {
		fmt.Fprintf(w, "%s\n", c.about)
	}
	fmt.Fprintf(w, "\nArguments:\n%s\n", indent(c.params))
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fmt.Fprintf(w, "\nExample:\n%s\n", indent(c.example))
	if c.more != "" {
		fmt.Fprintf(w, "\n%s", c.more)
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// nonNegative checks the value of an integer flag.
func nonNegative(name string, v int64) error {
	if v < 0 {
		return usagef("-%s %d: must be 0 or more", name, v)
	}
	return nil
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
