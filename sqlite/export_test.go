package sqlite

// PathOf returns the file of b, for tests that open it twice.
func PathOf(b *Backend) string { return b.path }
