package eventstore

import (
	"cmp"
	"fmt"
	"reflect"
	"time"
)

// The argument checks that options and constructors share. Every numeric
// option has a documented maximum, so that no value can overflow a
// computation or make an allocation panic; beyond it the call fails with
// [ErrInvalidArgument].

// MaxBuffer is the largest [SubscribeOptions.Buffer] and
// [ConsumerOptions.Buffer]. A subscription allocates its whole buffer up
// front: at most 65,536 events.
const MaxBuffer = 1 << 16

// MaxBatchSize is the largest [ForwarderOptions.BatchSize]: 32,768. A
// forwarder reads two batches ahead, within [MaxBuffer].
const MaxBatchSize = MaxBuffer / 2

// maxCount is the largest count option: [ConsumerOptions.CheckpointEvery],
// [ConsumerOptions.ParkAfter] and [Group.Size].
const maxCount = 1_000_000

// maxWait is the longest duration option: backoffs and checkpoint
// intervals.
const maxWait = 24 * time.Hour

// atMost returns an error matching [ErrInvalidArgument] when the option
// named what is v, above limit.
func atMost[T int | time.Duration](what string, v, limit T) error {
	if v > limit {
		return fmt.Errorf("%w: %s %v: the limit is %v", ErrInvalidArgument, what, v, limit)
	}
	return nil
}

// firstError returns the first of errs that is not nil.
func firstError(errs ...error) error { return cmp.Or(errs...) }

// isNil reports whether v is nil, or an interface holding a nil pointer,
// map, slice, func or channel.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
