package aggregate

import (
	"encoding/binary"
	"hash/maphash"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

// Metric names, in the style of the semantic conventions' http.server.* metrics.
const (
	MetricRequests  = "http.server.route.requests"
	MetricErrors    = "http.server.route.errors"
	MetricDuration  = "http.server.route.duration"
	MetricQuantiles = "http.server.route.duration.quantiles"
	// MetricRequestDuration is the semantic conventions' own HTTP server metric, emitted beside the route metrics
	// when Config.RequestDuration is set.
	MetricRequestDuration = "http.server.request.duration"
)

// Metric is the name and description of one metric a Store writes.
type Metric struct{ Name, Description string }

// Metrics names what a Store writes: its series' counts and latency distributions. Errors with an empty name is
// not written.
type Metrics struct{ Requests, Errors, Duration, Quantiles Metric }

// RouteMetrics are the route metrics, what a Store writes unless told otherwise.
var RouteMetrics = Metrics{
	Requests:  Metric{MetricRequests, "Requests served per route."},
	Errors:    Metric{MetricErrors, "Requests per route that failed: span status Error or an HTTP status of 500 or more."},
	Duration:  Metric{MetricDuration, "Latency of requests per route, from server span durations."},
	Quantiles: Metric{MetricQuantiles, "Latency quantiles per route over the last flush interval, within 1% relative error; NaN for an interval without requests."},
}

// Attribute keys written on data points and resources.
const (
	AttrService     = semconv.ServiceName
	AttrEnvironment = semconv.DeploymentEnvironmentName
	AttrMethod      = semconv.HTTPRequestMethod
	AttrRoute       = semconv.HTTPRoute
	AttrStatusCode  = semconv.HTTPResponseStatusCode
	AttrStatusClass = semconv.HTTPResponseStatusClass
	// AttrOverflow marks the series that takes every request beyond max_series, as the OpenTelemetry SDKs do.
	AttrOverflow = semconv.MetricOverflow
	// AttrCollectorInstanceID names the gateway process that computed a series (spanmetrics uses the same key).
	AttrCollectorInstanceID = semconv.CollectorInstanceID
	// AttrErrorType is the semantic conventions' error.type, written on http.server.request.duration for a 5xx
	// status code (its value is the code, as the conventions say for HTTP servers).
	AttrErrorType = semconv.ErrorType
)

// MaxAttributeLength bounds each attribute value kept in a series key (bytes): a megabyte-long service name or
// dimension costs no more than a short one.
const MaxAttributeLength = 256

// Config shapes a Store.
type Config struct {
	Delta bool
	// ExponentialMaxSize selects exponential histograms with this many buckets; 0 selects ExplicitBounds.
	ExponentialMaxSize int32
	ExplicitBounds     []float64 // seconds, ascending
	// StatusClass writes "5xx" in http.response.status_class instead of the code in http.response.status_code.
	StatusClass    bool
	Quantiles      []float64
	DimensionNames []string
	MaxSeries      int
	Expiry         time.Duration
	MaxExemplars   int
	// ScopeName names the instrumentation scope of the emitted metrics.
	ScopeName string
	// RequestDuration also writes each series' histogram as http.server.request.duration, with the semantic
	// conventions' attributes (error.type on failed requests); needs status codes, not classes.
	RequestDuration bool
	// CollectorInstanceID, when not empty, is written on every data point as collector.instance.id, so that the
	// series of several gateway replicas never collide.
	CollectorInstanceID string
	// Metrics names what is written; the zero value is RouteMetrics.
	Metrics Metrics
	// WithoutSketch keeps no per-interval sketch: for series whose quantiles nobody reads (no Quantiles, no
	// history), it saves a sketch's memory and the cost of adding to it.
	WithoutSketch bool
}

// shardsPerCore sets how many shards the series are split into (per GOMAXPROCS, at least 16): by service, so that
// receiver goroutines aggregating different services rarely wait for one another; a batch locks its service's shard
// once per resource, not once per span, so two services that share a shard wait for each other's whole resource.
// With 4 a core, BenchmarkConnectorParallel's 20 services (10 per goroutine) met often enough that -cpu 2 did 1.48x
// (1.39-1.80) of -cpu 1; with 16, 1.88x (1.57-2.17); with 32, 1.95x (1.87-2.15). An idle shard costs a lock and
// empty maps.
const shardsPerCore = 32

// Store holds the series of one connector. Record through the Shard of a span's service, under its lock.
type Store struct {
	cfg       Config
	seed      maphash.Seed
	shards    []Shard
	count     atomic.Int64      // series held, over all shards, the overflow series excluded
	lastFlush pcommon.Timestamp // written by Flush with every shard locked

	overflowMu sync.Mutex
	overflow   *Series
}

// Shard is the part of a Store that holds some services' series.
type Shard struct {
	sync.Mutex
	store  *Store
	series map[string]*Series
	key    []byte
	_      [64]byte // keeps neighbouring shards' locks off one cache line
}

// NewStore returns an empty store whose first interval starts at now.
func NewStore(cfg Config, now pcommon.Timestamp) *Store {
	if cfg.Metrics == (Metrics{}) {
		cfg.Metrics = RouteMetrics
	}
	s := &Store{cfg: cfg, seed: maphash.MakeSeed(), lastFlush: now, shards: make([]Shard, max(16, shardsPerCore*runtime.GOMAXPROCS(0)))}
	for i := range s.shards {
		s.shards[i] = Shard{store: s, series: make(map[string]*Series)}
	}
	return s
}

// ShardOf returns the shard that holds the service's series.
func (s *Store) ShardOf(service string) *Shard { return &s.shards[s.ShardIndex(service)] }

// ShardIndex is the number, below ShardCount, of the shard that holds the service's series: what keeps per-service
// state of its own beside the store can shard it the same way, with the one hash.
func (s *Store) ShardIndex(service string) int {
	return int(maphash.String(s.seed, service) % uint64(len(s.shards)))
}

// ShardCount is how many shards the store has.
func (s *Store) ShardCount() int { return len(s.shards) }

// Shard returns shard i (from ShardIndex).
func (s *Store) Shard(i int) *Shard { return &s.shards[i] }

// Len returns the number of series held, the overflow series included.
func (s *Store) Len() int {
	n := int(s.count.Load())
	s.overflowMu.Lock()
	defer s.overflowMu.Unlock()
	if s.overflow != nil {
		n++
	}
	return n
}

// Record adds count requests of seconds (a sampled span stands for several) to their series and reports whether the
// series cap sent them to the overflow series. The caller holds the shard's lock, and attrs.Service belongs to it.
// seconds must be finite and non-negative, count at least 1; end is the span's end time (for exemplars), now the
// arrival time (for expiry).
func (sh *Shard) Record(attrs *Attributes, seconds float64, count uint64, isError bool, traceID pcommon.TraceID, spanID pcommon.SpanID, end, now pcommon.Timestamp) (overflowed bool) {
	return sh.with(attrs, now, func(series *Series) {
		series.record(seconds, count, isError, traceID, spanID, end, sh.store.cfg.MaxExemplars)
	})
}

// RecordDistribution adds count requests at once, of sum seconds in all, spread over the histogram as bins visits
// them: each bin's requests at its value. It builds a series from a distribution kept elsewhere (a sketch: its
// values are within the sketch's accuracy, so a request that close to a histogram bound may land on its other
// side); sum and count stay exact. No exemplars, no errors. The caller holds the shard's lock.
func (sh *Shard) RecordDistribution(attrs *Attributes, count uint64, sum float64, bins func(visit func(seconds float64, count uint64)), now pcommon.Timestamp) (overflowed bool) {
	return sh.with(attrs, now, func(series *Series) { series.recordDistribution(count, sum, bins) })
}

// with hands record the series of attrs, made if needed, or the overflow series past the cap (reported).
func (sh *Shard) with(attrs *Attributes, now pcommon.Timestamp, record func(*Series)) (overflowed bool) {
	s := sh.store
	sh.key = appendKey(sh.key[:0], attrs)
	series, ok := sh.series[string(sh.key)]
	if !ok {
		if s.count.Add(1) > int64(s.cfg.MaxSeries) {
			s.count.Add(-1)
			s.overflowMu.Lock()
			defer s.overflowMu.Unlock()
			if s.overflow == nil {
				s.overflow = s.newSeries(Attributes{}, now)
				s.overflow.isOverflow = true
			}
			record(s.overflow)
			s.overflow.lastSeen = now
			return true
		}
		series = s.newSeries(copyAttributes(attrs), now)
		sh.series[string(sh.key)] = series
	}
	record(series)
	series.lastSeen = now
	return false
}

func (s *Store) newSeries(attrs Attributes, now pcommon.Timestamp) *Series {
	series := &Series{Attrs: attrs, start: now}
	if !s.cfg.WithoutSketch {
		series.Sketch = newSketch()
	}
	if s.cfg.Delta {
		series.start = s.lastFlush
	}
	if s.cfg.ExponentialMaxSize > 0 {
		series.histogram = newExponentialHistogram(s.cfg.ExponentialMaxSize)
	} else {
		series.histogram = newExplicitHistogram(s.cfg.ExplicitBounds)
	}
	return series
}

// appendKey writes each attribute length-prefixed, so that no value can imitate a separator.
func appendKey(b []byte, a *Attributes) []byte {
	for _, v := range [...]string{a.Service, a.Environment, a.Method, a.Route} {
		b = appendKeyPart(b, v)
	}
	b = binary.AppendVarint(b, a.StatusCode)
	for _, v := range a.Dimensions {
		b = appendKeyPart(b, v)
	}
	return b
}

func appendKeyPart(b []byte, v string) []byte {
	v = truncate(v)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func truncate(v string) string {
	if len(v) > MaxAttributeLength {
		return v[:MaxAttributeLength]
	}
	return v
}

// ownString copies a value out of span memory as valid UTF-8 of at most MaxAttributeLength bytes, cut at a rune
// boundary.
func ownString(v string) string {
	v = truncate(v)
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	if len(v) > MaxAttributeLength {
		cut := MaxAttributeLength
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return strings.Clone(v)
}

func copyAttributes(a *Attributes) Attributes {
	out := Attributes{
		Service:     ownString(a.Service),
		Environment: ownString(a.Environment),
		Method:      ownString(a.Method),
		Route:       ownString(a.Route),
		StatusCode:  a.StatusCode,
	}
	if len(a.Dimensions) > 0 {
		out.Dimensions = make([]string, len(a.Dimensions))
		for i, v := range a.Dimensions {
			out.Dimensions[i] = ownString(v)
		}
	}
	return out
}

// Flush drops series idle for longer than the expiry, writes the live ones as metrics (in key order, whatever the
// shard) and starts a new interval. visit, when not nil, sees every series recorded into during the interval before
// its interval state is reset.
func (s *Store) Flush(now pcommon.Timestamp, visit func(*Series)) pmetric.Metrics {
	for i := range s.shards {
		s.shards[i].Lock()
	}
	s.overflowMu.Lock()
	defer func() {
		s.overflowMu.Unlock()
		for i := range s.shards {
			s.shards[i].Unlock()
		}
	}()
	md := pmetric.NewMetrics()
	expiredBefore := now - pcommon.Timestamp(s.cfg.Expiry.Nanoseconds())
	type keyed struct {
		key    string
		series *Series
	}
	live := make([]keyed, 0, s.count.Load())
	for i := range s.shards {
		for k, series := range s.shards[i].series {
			if series.lastSeen < expiredBefore {
				delete(s.shards[i].series, k)
				s.count.Add(-1)
				continue
			}
			live = append(live, keyed{k, series})
		}
	}
	slices.SortFunc(live, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	w := newWriter(md, &s.cfg, now)
	for _, e := range live {
		s.flushSeries(w, e.series, now, visit)
	}
	if s.overflow != nil {
		s.flushSeries(w, s.overflow, now, visit)
	}
	s.lastFlush = now
	return md
}

func (s *Store) flushSeries(w *writer, series *Series, now pcommon.Timestamp, visit func(*Series)) {
	if series.dirty || !s.cfg.Delta {
		w.write(series)
	}
	if series.dirty && visit != nil {
		visit(series)
	}
	series.resetInterval(s.cfg.Delta, now)
}
