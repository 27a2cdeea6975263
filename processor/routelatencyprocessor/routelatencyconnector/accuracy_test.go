package routelatencyconnector

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// nativeHistogramQuantile is histogram_quantile over a native histogram as Prometheus 2.42 computes it: buckets at
// most at schema 8 (finer scales are merged down to it on the way in), linear interpolation inside the bucket holding
// rank q*count.
func nativeHistogramQuantile(q float64, dp pmetric.ExponentialHistogramDataPoint) float64 {
	const maxSchema = 8
	scale := min(dp.Scale(), maxSchema)
	shift := dp.Scale() - scale
	counts := map[int32]uint64{}
	var indices []int32
	for i, c := range dp.Positive().BucketCounts().AsRaw() {
		index := (dp.Positive().Offset() + int32(i)) >> shift
		if _, ok := counts[index]; !ok {
			indices = append(indices, index)
		}
		counts[index] += c
	}
	base := math.Pow(2, math.Pow(2, -float64(scale)))
	rank := q * float64(dp.Count()-dp.ZeroCount())
	var cum uint64
	for _, index := range indices {
		if c := counts[index]; c > 0 && float64(cum+c) >= rank {
			lower := math.Pow(base, float64(index))
			return lower + (lower*base-lower)*(rank-float64(cum))/float64(c)
		}
		cum += counts[index]
	}
	return math.NaN()
}

// quantileReadings is what each path gives for p50, p95 and p99 of one route's latencies: exact, classic buckets
// through histogram_quantile, a native histogram through histogram_quantile, the summary.
type quantileReadings struct{ exact, classic, native, summary [3]float64 }

var tableQuantiles = []float64{0.5, 0.95, 0.99}

func readQuantiles(t *testing.T, samples []time.Duration) quantileReadings {
	var r quantileReadings
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	classic := newTestConnector(t, func(c *Config) { c.Histogram.Type = histogramExplicit; c.Quantiles = tableQuantiles })
	require.NoError(t, classic.ConsumeTraces(context.Background(), oneRoute(samples)))
	md := classic.flushAt(15 * time.Second)
	buckets := findMetric(t, md, aggregate.MetricDuration).Histogram().DataPoints().At(0)
	summary := findMetric(t, md, aggregate.MetricQuantiles).Summary().DataPoints().At(0)
	native := newTestConnector(t, func(c *Config) { c.Histogram.Type = histogramExponential })
	require.NoError(t, native.ConsumeTraces(context.Background(), oneRoute(samples)))
	exponential := findMetric(t, native.flushAt(15*time.Second), aggregate.MetricDuration).ExponentialHistogram().DataPoints().At(0)
	for i, q := range tableQuantiles {
		r.exact[i] = exactQuantile(sorted, q)
		r.classic[i] = histogramQuantile(q, buckets.ExplicitBounds().AsRaw(), buckets.BucketCounts().AsRaw())
		r.native[i] = nativeHistogramQuantile(q, exponential)
		r.summary[i] = summary.QuantileValues().At(i).Value()
	}
	return r
}

func worstError(got, exact [3]float64) float64 {
	worst := 0.0
	for i := range got {
		worst = max(worst, math.Abs(got[i]-exact[i])/exact[i])
	}
	return worst
}

// TestQuantileErrorTable measures, against exact quantiles, what a Prometheus reads from the default classic buckets
// and from a native histogram with histogram_quantile, and what the summary reports: on smooth shapes, on a route
// whose latencies sit just above one bucket bound (a 402 ms route), on one of constant latency, and in the worst
// case over every bound. The table is testdata/quantile-error.md, quoted in the component README (UPDATE_GOLDEN=1
// rewrites both); the README's error statements come from it.
func TestQuantileErrorTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type row struct {
		shape string
		r     quantileReadings
	}
	var rows []row
	smooth := latencySamples(rng, 50_000)
	for _, name := range []string{"lognormal", "bimodal", "loguniform"} {
		rows = append(rows, row{map[string]string{
			"lognormal":  "lognormal, median 80 ms",
			"bimodal":    "bimodal, 3 ms (70 %) / 400 ms",
			"loguniform": "log-uniform, 1 ms .. 30 s",
		}[name], readQuantiles(t, smooth[name])})
	}
	narrow := make([]time.Duration, 10_000)
	for i := range narrow {
		narrow[i] = time.Duration(402e6 * math.Exp(0.002*rng.NormFloat64())) // 402 ms, 0.2 % spread
	}
	rows = append(rows, row{"402 ms ± 0.2 % (just above the 400 ms bound)", readQuantiles(t, narrow)})
	rows = append(rows, row{"16.7 ms, constant", readQuantiles(t, slices.Repeat([]time.Duration{16700 * time.Microsecond}, 10_000))})

	// The worst case: every request a hair above one bound, so that interpolation spreads them over the bucket.
	bounds := createDefaultConfig().(*Config).Histogram.Explicit.Buckets
	worst := func(from, to time.Duration) row {
		var out row
		for i, b := range bounds[:len(bounds)-1] {
			if b < from || bounds[i+1] > to {
				continue
			}
			r := readQuantiles(t, slices.Repeat([]time.Duration{b + b/1000}, 1_000))
			if worstError(r.classic, r.exact) > worstError(out.r.classic, out.r.exact) || out.shape == "" {
				out = row{fmt.Sprintf("worst of the bounds %s .. %s: %s + 0.1 %%, constant", from, to, b), r}
			}
		}
		return out
	}
	rows = append(rows, worst(4*time.Millisecond, 30*time.Second), worst(time.Millisecond, time.Minute))

	var table strings.Builder
	table.WriteString("| latencies | exact p50 / p95 / p99 | classic buckets p50 / p95 / p99 (worst error) | native histogram, worst error | summary, worst error |\n")
	table.WriteString("|---|---|---|---|---|\n")
	ms := func(v [3]float64) string {
		var parts [3]string
		for i, x := range v {
			if x >= 1 {
				parts[i] = fmt.Sprintf("%.4g s", x)
			} else {
				parts[i] = fmt.Sprintf("%.4g ms", x*1e3)
			}
		}
		return strings.Join(parts[:], " / ")
	}
	for _, r := range rows {
		fmt.Fprintf(&table, "| %s | %s | %s (%.1f %%) | %.2f %% | %.2f %% |\n", r.shape, ms(r.r.exact), ms(r.r.classic),
			100*worstError(r.r.classic, r.r.exact), 100*worstError(r.r.native, r.r.exact), 100*worstError(r.r.summary, r.r.exact))
		require.LessOrEqualf(t, worstError(r.r.summary, r.r.exact), aggregate.SketchRelativeAccuracy, "summary, %s", r.shape)
	}
	for _, r := range rows[:3] {
		require.LessOrEqualf(t, worstError(r.r.classic, r.r.exact), 0.05, "classic buckets on a smooth shape, %s", r.shape)
	}
	t.Log("\n" + table.String())

	goldenPath := filepath.Join("testdata", "quantile-error.md")
	readmePath := filepath.Join("..", "README.md")
	readme, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	const begin, end = "<!-- quantile-error.md: begin -->\n", "<!-- quantile-error.md: end -->"
	i, j := strings.Index(string(readme), begin), strings.Index(string(readme), end)
	require.Truef(t, i >= 0 && j > i, "%s lacks the markers around the table", readmePath)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, os.WriteFile(goldenPath, []byte(table.String()), 0o644))
		readme = slices.Concat(readme[:i+len(begin)], []byte(table.String()), readme[j:])
		require.NoError(t, os.WriteFile(readmePath, readme, 0o644))
		j = i + len(begin) + table.Len()
	}
	want, err := os.ReadFile(goldenPath)
	require.NoError(t, err)
	require.Equal(t, string(want), table.String(), "UPDATE_GOLDEN=1 rewrites %s", goldenPath)
	require.Equal(t, string(want), string(readme[i+len(begin):j]), "the README quotes %s (UPDATE_GOLDEN=1)", goldenPath)
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
