package sqlite

import (
	"os"
	"sync"
)

// liveClaimsSuffix names the file beside the store in which each backend
// that claims consumers holds a lock for as long as it is open: the lock
// dies with its process, so other processes can tell that a claim's holder
// is gone (see the package documentation on claims).
const liveClaimsSuffix = "-claims"

// liveness is a backend's side of that file: the lock it holds, and the
// check of the locks of others. Where the operating system offers no such
// lock, a claim's process is unknown and the claim lapses only by expiry.
type liveness struct {
	mu     sync.Mutex
	opened bool
	f      *os.File
	file   string // the identity of f, as claims record it
	self   string // this backend's process, as claims record it; "" if none
}

// id returns the process that this backend's claims record, opening the
// file on first use.
func (l *liveness) id(path string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.openOnce(path)
	return l.self
}

// alive reports whether the process a claim records may still be running:
// false only when it is known to be gone.
func (l *liveness) alive(path, process string) bool {
	if process == "" {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.openOnce(path)
	if process == l.self || l.f == nil {
		return true
	}
	return l.held(process)
}

func (l *liveness) openOnce(path string) {
	if !l.opened {
		l.opened = true
		l.open(path)
	}
}

// close releases the lock: from now on, this backend's claims count as
// those of a process that is gone.
func (l *liveness) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opened = true // never again
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f, l.self = nil, ""
	return err
}
