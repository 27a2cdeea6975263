// Package aggregate keeps per-series request counts, error counts, latency histograms and quantile sketches, and
// writes them out as OpenTelemetry metrics. It knows nothing of paths or spans: callers hand it resolved attributes.
package aggregate // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/aggregate"

import (
	"sort"

	"github.com/lightstep/go-expohisto/structure"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// latencyHistogram is the exported distribution of one series: exponential (mergeable, the default) or explicit.
type latencyHistogram interface {
	observe(seconds float64, count uint64)
	reset()
	// writeTo fills the data point of the matching metric type, with the series' sum (exact where the buckets were
	// filled from a sketch's bins).
	writeTo(m pmetric.Metric, sum float64) pmetric.ExemplarSlice
}

type exponentialHistogram struct {
	h structure.Histogram[float64]
}

func newExponentialHistogram(maxSize int32) *exponentialHistogram {
	e := &exponentialHistogram{}
	e.h.Init(structure.NewConfig(structure.WithMaxSize(maxSize)))
	return e
}

func (e *exponentialHistogram) observe(seconds float64, count uint64) {
	e.h.UpdateByIncr(seconds, count)
}
func (e *exponentialHistogram) reset() { e.h.Clear() }

func (e *exponentialHistogram) writeTo(m pmetric.Metric, sum float64) pmetric.ExemplarSlice {
	dp := m.ExponentialHistogram().DataPoints().AppendEmpty()
	dp.SetCount(e.h.Count())
	dp.SetSum(sum)
	if e.h.Count() > 0 {
		dp.SetMin(e.h.Min())
		dp.SetMax(e.h.Max())
	}
	dp.SetZeroCount(e.h.ZeroCount())
	dp.SetScale(e.h.Scale())
	in, out := e.h.Positive(), dp.Positive()
	out.SetOffset(in.Offset())
	out.BucketCounts().EnsureCapacity(int(in.Len()))
	for i := uint32(0); i < in.Len(); i++ {
		out.BucketCounts().Append(in.At(i))
	}
	return dp.Exemplars()
}

type explicitHistogram struct {
	bounds   []float64 // shared between series, read only
	counts   []uint64
	count    uint64
	min, max float64
}

func newExplicitHistogram(bounds []float64) *explicitHistogram {
	return &explicitHistogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (e *explicitHistogram) observe(seconds float64, count uint64) {
	e.counts[sort.SearchFloat64s(e.bounds, seconds)] += count
	if e.count == 0 || seconds < e.min {
		e.min = seconds
	}
	if e.count == 0 || seconds > e.max {
		e.max = seconds
	}
	e.count += count
}

func (e *explicitHistogram) reset() {
	clear(e.counts)
	e.count, e.min, e.max = 0, 0, 0
}

func (e *explicitHistogram) writeTo(m pmetric.Metric, sum float64) pmetric.ExemplarSlice {
	dp := m.Histogram().DataPoints().AppendEmpty()
	dp.SetCount(e.count)
	dp.SetSum(sum)
	if e.count > 0 {
		dp.SetMin(e.min)
		dp.SetMax(e.max)
	}
	dp.ExplicitBounds().FromRaw(e.bounds)
	dp.BucketCounts().FromRaw(e.counts)
	return dp.Exemplars()
}
