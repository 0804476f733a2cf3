package sqlite

import (
	"context"
	"testing"

	"github.com/edge-es/eventstore"
)

func BenchmarkReadStream10(b *testing.B) {
	for _, policy := range []string{"none", "other", "own"} {
		b.Run(policy, func(b *testing.B) {
			s, _ := benchStore(b, nil)
			ctx := context.Background()
			if _, err := s.Append(ctx, "short-1", eventstore.Any, benchEvents(10)...); err != nil {
				b.Fatal(err)
			}
			fillBench(b, s, 10_000)
			switch policy {
			case "other":
				s.SetRetention(ctx, "else-1", eventstore.Retention{MaxCount: 5})
			case "own":
				s.SetRetention(ctx, "short-1", eventstore.Retention{MaxCount: 100})
			}
			for b.Loop() {
				n := 0
				for _, err := range s.ReadStream(ctx, "short-1", eventstore.ReadOptions{}) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != 10 {
					b.Fatalf("read %d", n)
				}
			}
		})
	}
}
