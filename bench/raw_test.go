package bench

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/mattn/go-sqlite3"
	_ "modernc.org/sqlite"
	zsqlite "zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// sqlDB opens a database/sql handle on driver ("sqlite" is modernc,
// "sqlite3" is mattn), one connection, WAL, synchronous NORMAL.
func sqlDB(b *testing.B, driver string) *sql.DB {
	b.Helper()
	path := filepath.Join(b.TempDir(), "raw.db")
	dsn := path + "?_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)"
	if driver == "sqlite3" {
		dsn = path + "?_synchronous=NORMAL&_busy_timeout=5000"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { db.Close() })
	if _, err := db.Exec("PRAGMA journal_mode = WAL"); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(rawSchema); err != nil {
		b.Fatal(err)
	}
	return db
}

func sqlInsert(b *testing.B, db *sql.DB, rows int, versions []int64, i int) {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := tx.PrepareContext(ctx, rawInsert)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Now().UnixNano()
	k := i % streams // one stream per transaction, as one Append
	for range rows {
		id := uuid.Must(uuid.NewV7())
		if _, err := st.ExecContext(ctx, id[:], stream(k), versions[k], "Reading", data, at); err != nil {
			b.Fatal(err)
		}
		versions[k]++
	}
	st.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func sqlScan(b *testing.B, db *sql.DB) {
	rows, err := db.Query(rawScan)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var pos, version, at int64
		var id, body []byte
		var s, typ string
		if err := rows.Scan(&pos, &id, &s, &version, &typ, &body, &at); err != nil {
			b.Fatal(err)
		}
		_ = time.Unix(0, at)
		n++
	}
	if err := rows.Close(); err != nil || n != scanSize {
		b.Fatal(err, n)
	}
}

func benchSQL(b *testing.B, driver string) {
	for _, rows := range []int{1, 100} {
		b.Run(txName(rows), func(b *testing.B) {
			db := sqlDB(b, driver)
			versions := make([]int64, streams)
			i := 0
			for b.Loop() {
				sqlInsert(b, db, rows, versions, i)
				i++
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "events/s")
		})
	}
	b.Run("scan", func(b *testing.B) {
		db := sqlDB(b, driver)
		versions := make([]int64, streams)
		for i := range scanSize / 100 {
			sqlInsert(b, db, 100, versions, i)
		}
		for b.Loop() {
			sqlScan(b, db)
		}
		b.ReportMetric(float64(b.N*scanSize)/b.Elapsed().Seconds(), "events/s")
	})
}

func txName(rows int) string {
	if rows == 1 {
		return "tx1"
	}
	return "tx100"
}

func BenchmarkModernc(b *testing.B) { benchSQL(b, "sqlite") }
func BenchmarkMattn(b *testing.B)   { benchSQL(b, "sqlite3") }

// BenchmarkZombiezen runs the same operations on modernc's engine without
// database/sql.
func BenchmarkZombiezen(b *testing.B) {
	open := func(b *testing.B) *zsqlite.Conn {
		conn, err := zsqlite.OpenConn(filepath.Join(b.TempDir(), "raw.db"), zsqlite.OpenReadWrite|zsqlite.OpenCreate)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		for _, pragma := range []string{"PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"} {
			if err := sqlitex.ExecuteTransient(conn, pragma, nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := sqlitex.ExecuteScript(conn, rawSchema, nil); err != nil {
			b.Fatal(err)
		}
		return conn
	}
	insert := func(b *testing.B, conn *zsqlite.Conn, rows int, versions []int64, i int) {
		if err := sqlitex.ExecuteTransient(conn, "BEGIN", nil); err != nil {
			b.Fatal(err)
		}
		st := conn.Prep(rawInsert)
		at := time.Now().UnixNano()
		k := i % streams
		for range rows {
			id := uuid.Must(uuid.NewV7())
			st.BindBytes(1, id[:])
			st.BindText(2, stream(k))
			st.BindInt64(3, versions[k])
			st.BindText(4, "Reading")
			st.BindBytes(5, data)
			st.BindInt64(6, at)
			if _, err := st.Step(); err != nil {
				b.Fatal(err)
			}
			if err := st.Reset(); err != nil {
				b.Fatal(err)
			}
			versions[k]++
		}
		if err := sqlitex.ExecuteTransient(conn, "COMMIT", nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, rows := range []int{1, 100} {
		b.Run(txName(rows), func(b *testing.B) {
			conn := open(b)
			versions := make([]int64, streams)
			i := 0
			for b.Loop() {
				insert(b, conn, rows, versions, i)
				i++
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "events/s")
		})
	}
	b.Run("scan", func(b *testing.B) {
		conn := open(b)
		versions := make([]int64, streams)
		for i := range scanSize / 100 {
			insert(b, conn, 100, versions, i)
		}
		for b.Loop() {
			st := conn.Prep(rawScan)
			n := 0
			for {
				row, err := st.Step()
				if err != nil {
					b.Fatal(err)
				}
				if !row {
					break
				}
				id := make([]byte, st.ColumnLen(1))
				st.ColumnBytes(1, id)
				body := make([]byte, st.ColumnLen(5))
				st.ColumnBytes(5, body)
				_, _, _ = st.ColumnInt64(0), st.ColumnText(2), st.ColumnText(4)
				_ = time.Unix(0, st.ColumnInt64(6))
				n++
			}
			st.Reset()
			if n != scanSize {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(b.N*scanSize)/b.Elapsed().Seconds(), "events/s")
	})
}
