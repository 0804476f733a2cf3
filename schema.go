package eventstore

import _ "embed"

// SchemaSQL is the SQLite schema of the store files that package sqlite
// writes: its numbered migrations, each a "-- migration N" section that
// sqlite.Open applies once, in order, and the comments that describe every
// table and column. It is here, in the root package, as the one copy that
// package sqlite applies and that people reading a store file with the
// sqlite3 shell can print (fmt.Print(eventstore.SchemaSQL)) to learn its
// layout. Treat it as read-only.
//
//go:embed schema.sql
var SchemaSQL string
