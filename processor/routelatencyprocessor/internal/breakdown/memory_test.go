package breakdown

import (
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestMemoryHeldAt100kSpansPerSecond drives the store as a gateway at 100,000 spans/s would (the default grace of
// 5 s, a sweep every half second) for 15 s of a driven clock, and measures the heap it holds in steady state: what
// the component README states. Traces of a server span and 4 children, and traces of a server span alone (a request
// waits without a trace entry).
func TestMemoryHeldAt100kSpansPerSecond(t *testing.T) {
	if testing.Short() {
		t.Skip("drives 1.5 M spans")
	}
	for _, tc := range []struct {
		name       string
		perRequest int
		maxMiB     float64 // what the README allows
	}{{"a server span and 4 children", 5, 100}, {"a server span alone", 1, 100}} {
		t.Run(tc.name, func(t *testing.T) {
			const spansPerSecond = 100_000
			s := NewStore(Limits{Grace: 5 * time.Second, MaxSpans: 500_000, MaxSpansPerTrace: 10_000})
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			now := t0
			requests := 0
			statement := "SELECT * FROM items WHERE id = ?"
			for tick := 0; tick < 150; tick++ { // 100 ms ticks
				now = now.Add(100 * time.Millisecond)
				for range spansPerSecond / 10 / tc.perRequest {
					requests++
					trace := pcommon.TraceID{byte(requests), byte(requests >> 8), byte(requests >> 16), byte(requests >> 24)}
					for c := range tc.perRequest - 1 {
						sp := child(uint64(2+c), 1, int64(c), int64(c+1), sqlite)
						sp.Statement = statement
						s.AddSpan(trace, shopID, sp, now)
					}
					s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: request(10 * ms), Count: 1}, now)
				}
				if tick%5 == 0 {
					s.Sweep(now, func(Request, Split) {})
				}
			}
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
			c := s.Drain()
			t.Logf("FIGURES breakdown memory at %d spans/s, traces of %s, grace 5 s: %d records held (%d of them requests waiting), heap %.1f MiB (%.0f bytes a record, requests included); recorded %d, dropped at the bound %d",
				spansPerSecond, tc.name, s.Held(), s.due.len(), heap/(1<<20), heap/float64(s.Held()), c.Recorded, c.Dropped)
			if s.Held() > 500_000 {
				t.Errorf("%d records held, over max_spans", s.Held())
			}
			if heap > tc.maxMiB*(1<<20) {
				t.Errorf("the store holds %.0f MiB at 100k spans/s, over the %.0f MiB the README allows", heap/(1<<20), tc.maxMiB)
			}
			runtime.KeepAlive(s)
		})
	}
}
