package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-apm/otelcol-apm/bench/internal/load"
	"github.com/otelcol-apm/otelcol-apm/bench/internal/procstat"
	"github.com/otelcol-apm/otelcol-apm/bench/internal/sink"
)

// rate is the fixed load of the CPU comparison: what one core of a gateway carries comfortably.
const rate = 50_000

var quantiles = []float64{0.5, 0.9, 0.99, 0.999}

type results struct {
	window time.Duration
	rounds int
	// atRate and flatOut hold one run per round for each variant, in round order, so that ratios pair runs of the
	// same round.
	atRate  map[string][]run
	flatOut map[string][]run
	// bothCores holds flat-out runs of A and C with the collector unpinned (both cores, shared with the generator).
	bothCores                     map[string][]run
	accuracy                      []accuracyRow
	cardinality                   []cardinalityRow
	outside                       []outsideCheck
	throughputSpans, payloadSpans int
}

type accuracyRow struct {
	source string
	errs   []float64 // relative error per quantile
	values []float64 // seconds
}

type cardinalityRow struct {
	variant        string
	series         int
	peakRSS        int64
	acked, dropped int64
}

func runAll(bin, repo string, rounds int, window time.Duration) (*results, error) {
	p, err := load.Build(load.Realistic, 256, 100, 1)
	if err != nil {
		return nil, err
	}
	r := &results{window: window, rounds: rounds, atRate: map[string][]run{}, flatOut: map[string][]run{}, bothCores: map[string][]run{}}
	for _, n := range p.Spans {
		r.payloadSpans += n
	}
	for round := range rounds {
		for _, v := range variants { // A B C, A B C, ...: the three runs of a round share the machine's mood
			m, err := measure(bin, repo, v, p, rate, window, true)
			if err != nil {
				return nil, fmt.Errorf("%s at %d spans/s: %w", v.name, rate, err)
			}
			log.Printf("round %d %s at %d/s: %.0f acked/s, %.3f CPU s/Mspan, RSS %d MiB, lost %d", round+1, v.name, rate, m.ackedPerSec, m.cpuPerMillion, m.peakRSS>>20, m.lost)
			r.atRate[v.name] = append(r.atRate[v.name], m)
		}
		for _, v := range variants {
			m, err := measure(bin, repo, v, p, 0, window, true)
			if err != nil {
				return nil, fmt.Errorf("%s flat out: %w", v.name, err)
			}
			log.Printf("round %d %s flat out: %.0f delivered/s, core %.0f%% busy, %.3f CPU s/Mspan, %d acknowledged but dropped", round+1, v.name, m.deliveredPerSec, m.utilization*100, m.cpuPerMillion, m.lost)
			r.flatOut[v.name] = append(r.flatOut[v.name], m)
		}
	}
	// The collector on both cores: unpinned, GOMAXPROCS 2, the generator and the sink competing with it (the driver
	// itself is pinned to core 1 by make bench). Three rounds of A and C, back to back.
	for round := range min(rounds, 3) {
		for _, v := range variants {
			if v.name == "B" {
				continue
			}
			m, err := measure(bin, repo, v, p, 0, window, false)
			if err != nil {
				return nil, fmt.Errorf("%s flat out on both cores: %w", v.name, err)
			}
			log.Printf("round %d %s flat out, both cores: %.0f delivered/s, %.2f cores busy, %.3f CPU s/Mspan", round+1, v.name, m.deliveredPerSec, m.utilization, m.cpuPerMillion)
			r.bothCores[v.name] = append(r.bothCores[v.name], m)
		}
	}
	if r.accuracy, err = runAccuracy(bin, repo); err != nil {
		return nil, err
	}
	if r.cardinality, err = runCardinality(bin, repo); err != nil {
		return nil, err
	}
	return r, nil
}

// runAccuracy sends 200,000 requests of one route with known latencies through span_metrics (explicit buckets,
// then exponential) and routelatency, and compares each reported quantile with the exact one.
func runAccuracy(bin, repo string) ([]accuracyRow, error) {
	p, err := load.Build(load.Shape{SingleRoute: true}, 400, 500, 3)
	if err != nil {
		return nil, err
	}
	sorted := slices.Clone(p.Latencies)
	slices.Sort(sorted)
	exact := make([]float64, len(quantiles))
	for i, q := range quantiles {
		exact[i] = sorted[int(math.Floor(q*float64(len(sorted)-1)))].Seconds()
	}
	rows := []accuracyRow{{source: "exact", values: exact}}
	for _, v := range []struct {
		source  string
		configs []string
		flush   string
		kind    pmetric.MetricType
	}{
		{"span_metrics, default explicit buckets", []string{"a-plain", "b-spanmetrics", "b-spanmetrics-explicit"}, "1s", pmetric.MetricTypeHistogram},
		{"span_metrics, exponential histogram (max_size 160)", []string{"a-plain", "b-spanmetrics"}, "1s", pmetric.MetricTypeExponentialHistogram},
		// One interval, flushed at shutdown, so that the summary's quantiles cover every request.
		{"routelatency, exponential histogram (max_size 160)", []string{"a-plain", "c-routelatency"}, "1h", pmetric.MetricTypeExponentialHistogram},
		{"routelatency, quantile summary (sketch, 1%)", []string{"a-plain", "c-routelatency"}, "1h", pmetric.MetricTypeSummary},
	} {
		s, err := sink.Start(true)
		if err != nil {
			return nil, err
		}
		c, err := startCollector(bin, repo, v.configs, s, false, "METRICS_FLUSH_INTERVAL="+v.flush, "SERIES_EXPIRY=2h")
		if err != nil {
			return nil, err
		}
		// Well under the slowest variant's maximum, so that no span is dropped after acknowledgement.
		res, err := load.Replay(context.Background(), c.otlp, p, 2, 8, 100_000, 5*time.Minute, int64(len(p.Latencies)))
		if err != nil || res.RefusedSpans > 0 {
			c.stop()
			return nil, fmt.Errorf("accuracy %s: %v, %d refused", v.source, err, res.RefusedSpans)
		}
		waitSpans(s, res.AckedSpans)
		time.Sleep(3 * time.Second) // two span_metrics flushes after the last span
		c.stop()
		s.Stop()
		values, err := reportedQuantiles(s.Metrics(), v.kind, uint64(len(p.Latencies)))
		if err != nil {
			return nil, fmt.Errorf("accuracy %s: %w", v.source, err)
		}
		row := accuracyRow{source: v.source, values: values}
		for i := range quantiles {
			row.errs = append(row.errs, math.Abs(values[i]-exact[i])/exact[i])
		}
		log.Printf("accuracy %s: %v (exact %v)", v.source, values, exact)
		rows = append(rows, row)
	}
	return rows, nil
}

func waitSpans(s *sink.Sink, n int64) {
	deadline := time.Now().Add(30 * time.Second)
	for s.Spans() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// reportedQuantiles reads the quantiles from the newest data point of the metric type that covers all n requests:
// a summary, an exponential or an explicit histogram (span_metrics' are in milliseconds).
func reportedQuantiles(exports []pmetric.Metrics, kind pmetric.MetricType, n uint64) ([]float64, error) {
	for e := len(exports) - 1; e >= 0; e-- {
		rms := exports[e].ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					if ms.At(k).Type() != kind {
						continue
					}
					if out, ok := quantilesOf(ms.At(k), n); ok {
						return out, nil
					}
				}
			}
		}
	}
	return nil, fmt.Errorf("no %s of %d requests among %d exports", kind, n, len(exports))
}

func quantilesOf(m pmetric.Metric, n uint64) ([]float64, bool) {
	scale := 1.0
	if m.Unit() == "ms" {
		scale = 1e-3
	}
	out := make([]float64, len(quantiles))
	switch m.Type() {
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			if dp := dps.At(i); dp.Count() == n && dp.QuantileValues().Len() > 0 {
				for qi, q := range quantiles {
					for v := 0; v < dp.QuantileValues().Len(); v++ {
						if dp.QuantileValues().At(v).Quantile() == q {
							out[qi] = dp.QuantileValues().At(v).Value() * scale
						}
					}
				}
				return out, true
			}
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			if dp := dps.At(i); dp.Count() == n {
				for qi, q := range quantiles {
					out[qi] = exponentialQuantile(dp, q) * scale
				}
				return out, true
			}
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			if dp := dps.At(i); dp.Count() == n {
				for qi, q := range quantiles {
					out[qi] = explicitQuantile(dp, q) * scale
				}
				return out, true
			}
		}
	}
	return nil, false
}

// exponentialQuantile returns the midpoint of the bucket holding the lower-quantile rank.
func exponentialQuantile(dp pmetric.ExponentialHistogramDataPoint, q float64) float64 {
	rank := uint64(math.Floor(q * float64(dp.Count()-1)))
	if rank < dp.ZeroCount() {
		return 0
	}
	seen := dp.ZeroCount()
	base := math.Pow(2, math.Pow(2, -float64(dp.Scale())))
	counts := dp.Positive().BucketCounts()
	for i := 0; i < counts.Len(); i++ {
		seen += counts.At(i)
		if seen > rank {
			idx := float64(int(dp.Positive().Offset()) + i)
			lower, upper := math.Pow(base, idx), math.Pow(base, idx+1)
			return (lower + upper) / 2
		}
	}
	return dp.Max()
}

// explicitQuantile interpolates linearly inside the bucket, as Prometheus' histogram_quantile does.
func explicitQuantile(dp pmetric.HistogramDataPoint, q float64) float64 {
	rank := q * float64(dp.Count())
	bounds, counts := dp.ExplicitBounds(), dp.BucketCounts()
	var seen float64
	for i := 0; i < counts.Len(); i++ {
		c := float64(counts.At(i))
		if seen+c >= rank && c > 0 {
			lower := 0.0
			if i > 0 {
				lower = bounds.At(i - 1)
			}
			if i == bounds.Len() { // the +Inf bucket: the best answer is its lower bound
				return lower
			}
			return lower + (bounds.At(i)-lower)*(rank-seen)/c
		}
		seen += c
	}
	return dp.Max()
}

// runCardinality sends 1,000,000 requests, each with its own raw path, through B and C.
func runCardinality(bin, repo string) ([]cardinalityRow, error) {
	p, err := load.Build(load.Shape{DistinctPaths: true}, 2000, 500, 5)
	if err != nil {
		return nil, err
	}
	var rows []cardinalityRow
	for _, v := range variants[1:] {
		s, err := sink.Start(true)
		if err != nil {
			return nil, err
		}
		c, err := startCollector(bin, repo, v.configs, s, false, "METRICS_FLUSH_INTERVAL=5s")
		if err != nil {
			return nil, err
		}
		res, err := load.Replay(context.Background(), c.otlp, p, 2, 8, 100_000, 10*time.Minute, int64(len(p.Latencies)))
		if err != nil {
			c.stop()
			return nil, err
		}
		waitSpans(s, res.AckedSpans)
		time.Sleep(7 * time.Second) // one more flush after the last span
		rss, _ := procstat.PeakRSS(c.pid())
		c.stop()
		s.Stop()
		row := cardinalityRow{variant: v.name, series: seriesInLastExport(s.Metrics()), peakRSS: rss, acked: res.AckedSpans, dropped: res.RefusedSpans}
		log.Printf("cardinality %s: %d series, peak RSS %d MiB, %d acked, %d refused", v.name, row.series, rss>>20, row.acked, row.dropped)
		rows = append(rows, row)
	}
	return rows, nil
}

// seriesInLastExport counts the data points of the duration histogram in the newest export that has one.
func seriesInLastExport(exports []pmetric.Metrics) int {
	for e := len(exports) - 1; e >= 0; e-- {
		n := 0
		rms := exports[e].ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					switch m := ms.At(k); m.Type() {
					case pmetric.MetricTypeExponentialHistogram:
						n += m.ExponentialHistogram().DataPoints().Len()
					case pmetric.MetricTypeHistogram:
						n += m.Histogram().DataPoints().Len()
					}
				}
			}
		}
		if n > 0 {
			return n
		}
	}
	return 0
}
