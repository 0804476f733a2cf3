package sqlite

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Open file description locks (Linux 3.15 and later): unlike the classic
// POSIX locks that SQLite uses, they belong to one open file, not to the
// process, so two backends in one process hold their own, and closing
// another descriptor of the file does not drop them. The kernel releases
// them when the process dies, however it dies.
const (
	fOFDGetlk = 36
	fOFDSetlk = 37

	slotSize = 16   // a slot holds its holder's random token
	maxSlots = 4096 // backends open on one store at once
)

// open takes the first free slot of the file and writes its token there;
// the backend's claims then record "ofd:device:inode:slot:token". The
// file's identity is part of it so that a backend that reaches the store
// by another name never reads the slots of another file.
func (l *liveness) open(path string) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	name := path + liveClaimsSuffix
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	writable := err == nil
	if !writable {
		// Someone else's file: this backend can check the claims of
		// others, not mark its own.
		if f, err = os.Open(name); err != nil {
			return
		}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return
	}
	l.f, l.file = f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	if !writable {
		return
	}
	token := make([]byte, slotSize)
	rand.Read(token)
	for slot := int64(0); slot < maxSlots; slot++ {
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: slot * slotSize, Len: slotSize}
		err := syscall.FcntlFlock(f.Fd(), fOFDSetlk, &lk)
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			continue // another live backend's slot
		}
		if err != nil {
			return // no such locks here: claims lapse by expiry only
		}
		if _, err := f.WriteAt(token, slot*slotSize); err == nil {
			l.self = fmt.Sprintf("ofd:%s:%d:%x", l.file, slot, token)
		}
		return
	}
}

// held reports whether process's slot is still locked by the backend that
// wrote its token there. A slot that is unlocked, or locked under another
// token, means that backend has closed or its process has died.
func (l *liveness) held(process string) bool {
	var dev, ino uint64
	var slot int64
	var token string
	if _, err := fmt.Sscanf(process, "ofd:%d:%d:%d:%s", &dev, &ino, &slot, &token); err != nil ||
		fmt.Sprintf("%d:%d", dev, ino) != l.file || slot < 0 || slot >= maxSlots {
		return true // not ours to judge
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: slot * slotSize, Len: slotSize}
	if err := syscall.FcntlFlock(l.f.Fd(), fOFDGetlk, &lk); err != nil {
		return true
	}
	if lk.Type == syscall.F_UNLCK {
		return false
	}
	buf := make([]byte, slotSize)
	if _, err := l.f.ReadAt(buf, slot*slotSize); err != nil {
		return true
	}
	// A new holder that has locked the slot but not yet written its token
	// still shows the old one: the claim stands a moment longer.
	return fmt.Sprintf("%x", buf) == token
}
