package routelatencyconnector

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/aggregate"
)

// latencySamples are the distributions the quantile sketch must read within 1%: request latencies between 1 ms and
// 30 s in the shapes services show.
func latencySamples(rng *rand.Rand, n int) map[string][]time.Duration {
	clamp := func(s float64) time.Duration {
		return time.Duration(math.Min(math.Max(s, 0.001), 30) * float64(time.Second))
	}
	out := map[string][]time.Duration{}
	for range n {
		// Lognormal: median 80 ms, a long tail.
		out["lognormal"] = append(out["lognormal"], clamp(math.Exp(math.Log(0.08)+1.1*rng.NormFloat64())))
		// Bimodal: cache hits around 3 ms, misses around 400 ms.
		if rng.Float64() < 0.7 {
			out["bimodal"] = append(out["bimodal"], clamp(0.003*math.Exp(0.3*rng.NormFloat64())))
		} else {
			out["bimodal"] = append(out["bimodal"], clamp(0.4*math.Exp(0.25*rng.NormFloat64())))
		}
		// Log-uniform over the whole range, 1 ms .. 30 s.
		out["loguniform"] = append(out["loguniform"], clamp(0.001*math.Pow(30000, rng.Float64())))
	}
	return out
}

// oneRoute is one request of GET /items/{item_id} per latency, all of service shop.
func oneRoute(latencies []time.Duration) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	end := pcommon.NewTimestampFromTime(t0)
	for _, d := range latencies {
		s := spans.AppendEmpty()
		s.SetKind(ptrace.SpanKindServer)
		s.SetName("GET /items/{item_id}")
		s.SetStartTimestamp(end - pcommon.Timestamp(d))
		s.SetEndTimestamp(end)
	}
	return td
}

// exactQuantile is the lower quantile, sorted[floor(q*(n-1))], the definition the sketch approximates.
func exactQuantile(sorted []time.Duration, q float64) float64 {
	return sorted[int(math.Floor(q*float64(len(sorted)-1)))].Seconds()
}

func TestReportedQuantilesWithinOnePercent(t *testing.T) {
	quantiles := []float64{0.5, 0.9, 0.95, 0.99, 0.999}
	rng := rand.New(rand.NewPCG(1, 2))
	for name, samples := range latencySamples(rng, 50_000) {
		t.Run(name, func(t *testing.T) {
			tc := newTestConnector(t, func(c *Config) { c.Quantiles = quantiles })
			require.NoError(t, tc.ConsumeTraces(context.Background(), oneRoute(samples)))
			summary := findMetric(t, tc.flushAt(15*time.Second), aggregate.MetricQuantiles).Summary().DataPoints().At(0)
			require.Equal(t, uint64(len(samples)), summary.Count())

			sorted := slices.Clone(samples)
			slices.Sort(sorted)
			for i := 0; i < summary.QuantileValues().Len(); i++ {
				qv := summary.QuantileValues().At(i)
				exact := exactQuantile(sorted, qv.Quantile())
				relErr := math.Abs(qv.Value()-exact) / exact
				t.Logf("p%-5g exact %.6fs reported %.6fs error %.3f%%", qv.Quantile()*100, exact, qv.Value(), relErr*100)
				require.LessOrEqualf(t, relErr, aggregate.SketchRelativeAccuracy, "p%g: exact %v, reported %v", qv.Quantile()*100, exact, qv.Value())
			}
		})
	}
}

// histogramQuantile is Prometheus's histogram_quantile over classic buckets: find the bucket holding rank q*count and
// interpolate linearly inside it (from 0 in the first bucket; the last finite bound for +Inf).
func histogramQuantile(q float64, bounds []float64, counts []uint64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	rank := q * float64(total)
	var cum uint64
	for i, c := range counts {
		if float64(cum+c) >= rank && c > 0 {
			if i == len(bounds) {
				return bounds[len(bounds)-1]
			}
			lower := 0.0
			if i > 0 {
				lower = bounds[i-1]
			}
			return lower + (bounds[i]-lower)*(rank-float64(cum))/float64(c)
		}
		cum += c
	}
	return bounds[len(bounds)-1]
}

// TestClassicBucketsQuantileError measures what a Prometheus without native histograms reads from the default
// explicit buckets with histogram_quantile, against exact quantiles; the bound asserted is the one the README states.
func TestClassicBucketsQuantileError(t *testing.T) {
	const statedError = 0.05
	rng := rand.New(rand.NewPCG(1, 2))
	worst := 0.0
	for name, samples := range latencySamples(rng, 50_000) {
		tc := newTestConnector(t, func(c *Config) { c.Histogram.Type = histogramExplicit })
		require.NoError(t, tc.ConsumeTraces(context.Background(), oneRoute(samples)))
		dp := findMetric(t, tc.flushAt(15*time.Second), aggregate.MetricDuration).Histogram().DataPoints().At(0)
		sorted := slices.Clone(samples)
		slices.Sort(sorted)
		for _, q := range []float64{0.5, 0.95, 0.99} {
			got := histogramQuantile(q, dp.ExplicitBounds().AsRaw(), dp.BucketCounts().AsRaw())
			exact := exactQuantile(sorted, q)
			relErr := math.Abs(got-exact) / exact
			worst = max(worst, relErr)
			t.Logf("%-10s p%-4g exact %.6fs histogram_quantile %.6fs error %.2f%%", name, q*100, exact, got, relErr*100)
			require.LessOrEqualf(t, relErr, statedError, "%s p%g", name, q*100)
		}
	}
	t.Logf("largest error %.2f%% (stated: %.0f%%)", worst*100, statedError*100)
}

func findMetric(t *testing.T, md pmetric.Metrics, name string) pmetric.Metric {
	t.Helper()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if ms.At(j).Name() == name {
				return ms.At(j)
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return pmetric.Metric{}
}
