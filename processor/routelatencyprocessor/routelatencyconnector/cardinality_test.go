package routelatencyconnector

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestMillionDistinctRawPathsStayBounded sends 1,000,000 requests of one service, each with its own raw path that
// no id rule recognises (the worst case for a route cache), and checks that series and heap stay bounded.
func TestMillionDistinctRawPathsStayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("sends a million spans")
	}
	tc := newTestConnector(t, nil)
	heapBefore := heapInUse()

	const batches, perBatch = 1000, 1000
	end := pcommon.NewTimestampFromTime(t0)
	for b := range batches {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "shop")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range perBatch {
			s := spans.AppendEmpty()
			s.SetKind(ptrace.SpanKindServer)
			s.SetName("GET")
			s.SetStartTimestamp(end - pcommon.Timestamp(time.Millisecond))
			s.SetEndTimestamp(end)
			s.Attributes().PutStr("http.request.method", "GET")
			s.Attributes().PutStr("url.path", fmt.Sprintf("/search/q%dx", b*perBatch+i))
			s.Attributes().PutInt("http.response.status_code", 200)
		}
		require.NoError(t, tc.ConsumeTraces(context.Background(), td))
	}
	heapAfter := heapInUse()

	// 100 guessed routes (max_guessed_routes_per_service) plus the {overflow} route, one status code: 101 series.
	assert.Equal(t, 101, tc.store.Len())
	assert.Equal(t, 100, tc.resolver.Tracked())
	growth := int64(heapAfter) - int64(heapBefore)
	t.Logf("series %d, routes %d, heap growth %.1f MiB", tc.store.Len(), tc.resolver.Tracked(), float64(growth)/(1<<20))
	assert.Less(t, growth, int64(64<<20), "heap grew by %d bytes", growth)

	md := tc.flushAt(15 * time.Second)
	requests := findMetric(t, md, "http.server.route.requests").Sum().DataPoints()
	var total int64
	for i := 0; i < requests.Len(); i++ {
		total += requests.At(i).IntValue()
	}
	assert.Equal(t, int64(batches*perBatch), total, "every request is counted, under its route or {overflow}")
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestMemoryPerSeries measures what one series holds (docs/scaling.md sizes replicas from it): 5,000 declared routes
// over 50 services, each with latencies spread over 1 ms..10 s so that its sketch and histogram fill as in
// production, two status codes each.
func TestMemoryPerSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 10,000 series")
	}
	tc := newTestConnector(t, func(c *Config) { c.MaxSeries = 20000 })
	heapBefore := heapInUse()
	end := pcommon.NewTimestampFromTime(t0)
	for svc := range 50 {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", svc))
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for r := range 100 {
			for i := range 200 {
				s := spans.AppendEmpty()
				s.SetKind(ptrace.SpanKindServer)
				s.SetName("GET")
				d := time.Duration(math.Exp(float64(i)/200*math.Log(1e4))) * time.Millisecond // 1 ms .. 10 s
				s.SetStartTimestamp(end - pcommon.NewTimestampFromTime(t0.Add(d)) + pcommon.NewTimestampFromTime(t0))
				s.SetEndTimestamp(end)
				s.Attributes().PutStr("http.request.method", "GET")
				s.Attributes().PutStr("http.route", fmt.Sprintf("/r%d/{id}", r))
				s.Attributes().PutInt("http.response.status_code", int64(200+300*(i%2)))
			}
		}
		require.NoError(t, tc.ConsumeTraces(context.Background(), td))
	}
	heapAfter := heapInUse()
	series := tc.store.Len()
	perSeries := float64(int64(heapAfter)-int64(heapBefore)) / float64(series)
	t.Logf("series %d, heap %.1f MiB, %.1f KiB per series", series, float64(heapAfter-heapBefore)/(1<<20), perSeries/1024)
	assert.Equal(t, 10000, series)
	assert.Less(t, perSeries, 64.0*1024, "a series holds more than 64 KiB")
}
