package sqlite

import (
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"unsafe"

	msqlite "modernc.org/sqlite"
)

// castagnoli is the CRC-32C table of event checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is an event's CRC-32C, as schema.sql defines it (migration 7):
// each of stream, type, data and metadata preceded by its length as 4
// bytes big-endian, and the version as 8 bytes big-endian after the
// stream.
func checksum(stream string, version int64, typ string, data, metadata []byte) uint32 {
	var n [8]byte
	c := crc32.Update(0, castagnoli, lenPrefix(&n, len(stream)))
	c = crc32.Update(c, castagnoli, unsafe.Slice(unsafe.StringData(stream), len(stream)))
	binary.BigEndian.PutUint64(n[:], uint64(version))
	c = crc32.Update(c, castagnoli, n[:])
	c = crc32.Update(c, castagnoli, lenPrefix(&n, len(typ)))
	c = crc32.Update(c, castagnoli, unsafe.Slice(unsafe.StringData(typ), len(typ)))
	c = crc32.Update(c, castagnoli, lenPrefix(&n, len(data)))
	c = crc32.Update(c, castagnoli, data)
	c = crc32.Update(c, castagnoli, lenPrefix(&n, len(metadata)))
	return crc32.Update(c, castagnoli, metadata)
}

func lenPrefix(n *[8]byte, l int) []byte {
	binary.BigEndian.PutUint32(n[:4], uint32(l))
	return n[:4]
}

// The checksum is a SQL function too, eventstore_checksum(stream,
// version, type, data, metadata), for the migration that gives existing
// events theirs and for Verify, which compares every event's in one query.
func init() {
	err := msqlite.RegisterDeterministicScalarFunction("eventstore_checksum", 5,
		func(_ *msqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			stream, ok1 := args[0].(string)
			version, ok2 := args[1].(int64)
			typ, ok3 := args[2].(string)
			data, ok4 := sqlBytes(args[3])
			meta, ok5 := sqlBytes(args[4])
			if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
				return nil, fmt.Errorf("eventstore_checksum: want (text, integer, text, blob, blob), got %T, %T, %T, %T, %T",
					args[0], args[1], args[2], args[3], args[4])
			}
			return int64(checksum(stream, version, typ, data, meta)), nil
		})
	if err != nil {
		panic(err)
	}
}

// sqlBytes is a data or metadata value as SQL hands it over: a blob, text
// (a file written by hand) or NULL.
func sqlBytes(v driver.Value) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case []byte:
		return v, true
	case string:
		return []byte(v), true
	}
	return nil, false
}
