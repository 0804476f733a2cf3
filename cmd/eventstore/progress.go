package main

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress draws a progress bar on stderr while export, import or prune runs,
// when stderr is a terminal: one line, redrawn in place and fitted to the
// terminal's width, with the count, the rate and (when the total is
// known) the time left. It is cleared at the end, where the command
// prints its summary.
type progress struct {
	bar *progressbar.ProgressBar // nil: no terminal, nothing drawn
}

// newProgress starts a bar of total units (lines or events); a total of 0
// or less is unknown, and a spinner shows the count and rate instead.
func newProgress(e *env, verb, unit string, total int64) *progress {
	if !e.progress {
		return &progress{}
	}
	if total <= 0 {
		total = -1
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription(verb),
		progressbar.OptionSetWidth(30), // narrowed to fit the terminal
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	}
	// The rate and the times take some 30 columns, which a narrow
	// terminal has not got: the line would wrap, and every redraw leave a
	// line behind.
	if f, ok := e.stderr.(*os.File); !ok || terminalWidth(f) >= 64 {
		opts = append(opts,
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(true))
	} else {
		opts = append(opts,
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionSetPredictTime(false))
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...)}
}

// terminalWidth is the width of the terminal f, 80 when unknown.
func terminalWidth(f *os.File) int {
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil || w <= 0 {
		return 80
	}
	return w
}

// tick sets the count done so far. It looks at every 256th count only:
// it is called for every event.
func (p *progress) tick(n int64) {
	if p.bar != nil && n%256 == 0 {
		p.bar.Set64(n)
	}
}

// set sets the count done so far, for a caller that counts in batches.
func (p *progress) set(n int64) {
	if p.bar != nil {
		p.bar.Set64(n)
	}
}

// close clears the bar, so that what follows starts on a clean line.
func (p *progress) close() {
	if p.bar != nil {
		p.bar.Clear()
		p.bar = nil
	}
}

// countLines counts the lines of a file, for the progress bar; 0 when it
// cannot.
func countLines(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, err := f.Read(buf)
		for _, c := range buf[:k] {
			if c == '\n' {
				n++
			}
		}
		if err != nil {
			return n
		}
	}
}
