package aggregate

import (
	"github.com/DataDog/sketches-go/ddsketch"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// SketchRelativeAccuracy bounds the relative error of every quantile read from a series' sketch.
const SketchRelativeAccuracy = 0.01

// sketchMaxBins bounds a sketch's memory (8 bytes a bin): at 1% accuracy 2048 bins span ratios up to 1e17 between
// the smallest and the largest latency, so collapsing never happens for real latencies.
const sketchMaxBins = 2048

// Attributes identify a series. Strings handed to Record may point into span memory; the store copies them.
type Attributes struct {
	Service     string
	Environment string
	Method      string
	Route       string
	// StatusCode is the HTTP response status code, 0 when the span has none.
	StatusCode int64
	// Dimensions holds the configured extra dimensions' values, in configuration order.
	Dimensions []string
}

// Series is one (service, environment, method, route, status, dimensions) combination.
type Series struct {
	Attrs    Attributes
	Requests uint64
	Errors   uint64
	// SumSeconds is the total latency, following the temporality as Requests does.
	SumSeconds float64
	// IntervalErrors and IntervalSumSeconds are the current interval's, whatever the temporality (the dashboard's
	// slices).
	IntervalErrors     uint64
	IntervalSumSeconds float64
	// Sketch holds the latencies (seconds) of the current interval, reset after each flush; nil WithoutSketch.
	Sketch *ddsketch.DDSketch

	histogram  latencyHistogram
	exemplars  []exemplar
	start      pcommon.Timestamp
	lastSeen   pcommon.Timestamp
	dirty      bool // recorded into since the last flush
	isOverflow bool
}

type exemplar struct {
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	seconds float64
	at      pcommon.Timestamp
}

func newSketch() *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(SketchRelativeAccuracy, sketchMaxBins)
	if err != nil {
		panic(err) // constant arguments: cannot fail
	}
	return s
}

func (s *Series) record(seconds float64, count uint64, isError bool, traceID pcommon.TraceID, spanID pcommon.SpanID, at pcommon.Timestamp, maxExemplars int) {
	s.Requests += count
	s.SumSeconds += seconds * float64(count)
	s.IntervalSumSeconds += seconds * float64(count)
	if isError {
		s.Errors += count
		s.IntervalErrors += count
	}
	s.histogram.observe(seconds, count)
	if s.Sketch != nil {
		_ = s.Sketch.AddWithCount(seconds, float64(count)) // only fails for negative values, which Record rejects
	}
	s.lastSeen = at
	s.dirty = true
	if maxExemplars == 0 || traceID.IsEmpty() {
		return
	}
	// Keep the slowest requests of the interval: those are the ones worth opening in a trace view.
	if len(s.exemplars) < maxExemplars {
		s.exemplars = append(s.exemplars, exemplar{traceID, spanID, seconds, at})
		return
	}
	fastest := 0
	for i := 1; i < len(s.exemplars); i++ {
		if s.exemplars[i].seconds < s.exemplars[fastest].seconds {
			fastest = i
		}
	}
	if seconds > s.exemplars[fastest].seconds {
		s.exemplars[fastest] = exemplar{traceID, spanID, seconds, at}
	}
}

func (s *Series) recordDistribution(count uint64, sum float64, bins func(visit func(seconds float64, count uint64))) {
	s.Requests += count
	s.SumSeconds += sum
	s.IntervalSumSeconds += sum
	bins(func(seconds float64, n uint64) {
		s.histogram.observe(seconds, n)
		if s.Sketch != nil {
			_ = s.Sketch.AddWithCount(seconds, float64(n))
		}
	})
	s.dirty = true
}

// Exemplars visits the interval's slowest requests that carried a trace id.
func (s *Series) Exemplars(visit func(traceID pcommon.TraceID, spanID pcommon.SpanID, seconds float64, at pcommon.Timestamp)) {
	for _, e := range s.exemplars {
		visit(e.traceID, e.spanID, e.seconds, e.at)
	}
}

// resetInterval clears what is kept per interval: the sketch, the exemplars and, for delta temporality, the rest.
func (s *Series) resetInterval(delta bool, now pcommon.Timestamp) {
	if s.Sketch != nil {
		s.Sketch.Clear()
	}
	s.IntervalErrors, s.IntervalSumSeconds = 0, 0
	s.exemplars = s.exemplars[:0]
	s.dirty = false
	if delta {
		s.Requests, s.Errors, s.SumSeconds = 0, 0, 0
		s.histogram.reset()
		s.start = now
	}
}
