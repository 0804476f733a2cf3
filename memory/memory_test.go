package memory_test

import (
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/eventstoretest"
	"github.com/edge-es/eventstore/memory"
)

func TestConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Backend { return memory.New() })
}

// The zero Backend is an empty store, as New returns.
func TestConformance_ZeroValue(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Backend { return new(memory.Backend) })
}
