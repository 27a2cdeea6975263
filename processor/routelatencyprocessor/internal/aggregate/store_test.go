package aggregate

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

var t0 = pcommon.NewTimestampFromTime(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))

func at(d time.Duration) pcommon.Timestamp { return t0 + pcommon.Timestamp(d) }

func testConfig() Config {
	return Config{ExponentialMaxSize: 160, Quantiles: []float64{0.5}, MaxSeries: 100, Expiry: 5 * time.Minute, MaxExemplars: 2, ScopeName: "test"}
}

func record(s *Store, route string, seconds float64, count uint64, spanByte byte, now pcommon.Timestamp) bool {
	attrs := Attributes{Service: "shop", Environment: "production", Method: "GET", Route: route, StatusCode: 200}
	sh := s.ShardOf(attrs.Service)
	sh.Lock()
	defer sh.Unlock()
	return sh.Record(&attrs, seconds, count, false, pcommon.TraceID{spanByte}, pcommon.SpanID{spanByte}, now, now)
}

func metric(t *testing.T, md pmetric.Metrics, name string) pmetric.Metric {
	t.Helper()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if ms.At(j).Name() == name {
				return ms.At(j)
			}
		}
	}
	t.Fatalf("no %s", name)
	return pmetric.Metric{}
}

func TestExemplarsKeepTheSlowestOfTheInterval(t *testing.T) {
	s := NewStore(testConfig(), t0)
	for i, seconds := range []float64{0.1, 0.3, 0.2, 0.05} {
		record(s, "/a", seconds, 1, byte(i+1), at(time.Second))
	}
	exemplars := metric(t, s.Flush(at(15*time.Second), nil), MetricDuration).ExponentialHistogram().DataPoints().At(0).Exemplars()
	require.Equal(t, 2, exemplars.Len())
	got := []float64{exemplars.At(0).DoubleValue(), exemplars.At(1).DoubleValue()}
	assert.ElementsMatch(t, []float64{0.3, 0.2}, got)

	// The next interval starts without them.
	record(s, "/a", 0.01, 1, 9, at(16*time.Second))
	exemplars = metric(t, s.Flush(at(30*time.Second), nil), MetricDuration).ExponentialHistogram().DataPoints().At(0).Exemplars()
	require.Equal(t, 1, exemplars.Len())
	assert.Equal(t, pcommon.SpanID{9}, exemplars.At(0).SpanID())
}

func TestDeltaIntervalsStartWhereTheLastEnded(t *testing.T) {
	cfg := testConfig()
	cfg.Delta = true
	s := NewStore(cfg, t0)
	record(s, "/a", 0.1, 1, 1, at(5*time.Second))
	dp := metric(t, s.Flush(at(15*time.Second), nil), MetricRequests).Sum().DataPoints().At(0)
	assert.Equal(t, t0, dp.StartTimestamp(), "a series born in the first interval starts with the store")
	assert.Equal(t, at(15*time.Second), dp.Timestamp())
	assert.Equal(t, int64(1), dp.IntValue())

	md := s.Flush(at(30*time.Second), nil)
	assert.Zero(t, md.DataPointCount(), "delta: a quiet interval emits nothing")

	record(s, "/a", 0.1, 2, 1, at(40*time.Second))
	dp = metric(t, s.Flush(at(45*time.Second), nil), MetricRequests).Sum().DataPoints().At(0)
	assert.Equal(t, at(30*time.Second), dp.StartTimestamp())
	assert.Equal(t, int64(2), dp.IntValue())

	// A series born later starts at the last flush too, not at its first request.
	record(s, "/b", 0.1, 1, 1, at(50*time.Second))
	for dps, i := metric(t, s.Flush(at(60*time.Second), nil), MetricRequests).Sum().DataPoints(), 0; i < dps.Len(); i++ {
		assert.Equal(t, at(45*time.Second), dps.At(i).StartTimestamp())
	}
}

func TestSeriesExpireJustAfterTheExpiry(t *testing.T) {
	s := NewStore(testConfig(), t0)
	record(s, "/a", 0.1, 1, 1, t0)
	s.Flush(at(5*time.Minute), nil)
	assert.Equal(t, 1, s.Len(), "idle for exactly the expiry: kept")
	s.Flush(at(5*time.Minute+time.Nanosecond), nil)
	assert.Zero(t, s.Len(), "idle for longer: dropped")
}

func TestExplicitHistogramKeepsMinMaxAndCounts(t *testing.T) {
	cfg := testConfig()
	cfg.ExponentialMaxSize = 0
	cfg.ExplicitBounds = []float64{0.01, 0.1}
	s := NewStore(cfg, t0)
	record(s, "/a", 0.005, 1, 1, t0)
	record(s, "/a", 0.05, 3, 2, t0)
	record(s, "/a", 0.5, 1, 3, t0)
	dp := metric(t, s.Flush(at(time.Second), nil), MetricDuration).Histogram().DataPoints().At(0)
	assert.Equal(t, []uint64{1, 3, 1}, dp.BucketCounts().AsRaw())
	assert.Equal(t, uint64(5), dp.Count())
	assert.InDelta(t, 0.005+3*0.05+0.5, dp.Sum(), 1e-12)
	assert.Equal(t, 0.005, dp.Min())
	assert.Equal(t, 0.5, dp.Max())
}

func TestAdjustedCountReachesEveryAggregate(t *testing.T) {
	s := NewStore(testConfig(), t0)
	record(s, "/a", 0.2, 10, 1, t0)
	md := s.Flush(at(time.Second), nil)
	assert.Equal(t, int64(10), metric(t, md, MetricRequests).Sum().DataPoints().At(0).IntValue())
	h := metric(t, md, MetricDuration).ExponentialHistogram().DataPoints().At(0)
	assert.Equal(t, uint64(10), h.Count())
	assert.InDelta(t, 2.0, h.Sum(), 1e-12)
	q := metric(t, md, MetricQuantiles).Summary().DataPoints().At(0)
	assert.Equal(t, uint64(10), q.Count())
	assert.InEpsilon(t, 0.2, q.QuantileValues().At(0).Value(), SketchRelativeAccuracy)
}

// An idle route's summary must not go on showing its last busy interval: an exporter that caches points (the
// Prometheus exporter does, until its metric_expiration) would otherwise serve a flat p50 for a route that stopped.
func TestIdleRouteSummaryReportsNaNNotItsLastInterval(t *testing.T) {
	s := NewStore(testConfig(), t0)
	for range 100 {
		record(s, "/a", 0.05, 1, 1, t0)
	}
	busy := metric(t, s.Flush(at(time.Second), nil), MetricQuantiles).Summary().DataPoints().At(0)
	assert.InEpsilon(t, 0.05, busy.QuantileValues().At(0).Value(), SketchRelativeAccuracy)

	for d := 2 * time.Second; d <= 10*time.Second; d += time.Second {
		idle := metric(t, s.Flush(at(d), nil), MetricQuantiles).Summary().DataPoints().At(0)
		assert.Equal(t, uint64(100), idle.Count(), "count and sum stay cumulative")
		assert.InDelta(t, 5.0, idle.Sum(), 1e-9)
		require.Equal(t, 1, idle.QuantileValues().Len())
		assert.True(t, math.IsNaN(idle.QuantileValues().At(0).Value()), "p50 after %s idle: %v", d-time.Second, idle.QuantileValues().At(0).Value())
	}
}

func TestSeriesCapSendsTheRestToOneOverflowSeries(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSeries = 2
	s := NewStore(cfg, t0)
	assert.False(t, record(s, "/a", 0.1, 1, 1, t0))
	assert.False(t, record(s, "/b", 0.1, 1, 1, t0))
	assert.True(t, record(s, "/c", 0.1, 1, 1, t0))
	assert.True(t, record(s, "/d", 0.1, 4, 1, t0))
	assert.False(t, record(s, "/a", 0.1, 1, 1, t0), "a series already held keeps counting")
	assert.Equal(t, 3, s.Len())
	md := s.Flush(at(time.Second), nil)
	var overflow, total int64
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if ms.At(j).Name() != MetricRequests {
				continue
			}
			for k := 0; k < ms.At(j).Sum().DataPoints().Len(); k++ {
				dp := ms.At(j).Sum().DataPoints().At(k)
				total += dp.IntValue()
				if v, ok := dp.Attributes().Get(AttrOverflow); ok && v.Bool() {
					overflow += dp.IntValue()
				}
			}
		}
	}
	assert.Equal(t, int64(5), overflow)
	assert.Equal(t, int64(8), total, "every request counted, under its series or the overflow one")
}
