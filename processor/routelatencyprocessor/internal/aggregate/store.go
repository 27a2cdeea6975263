package aggregate

import (
	"encoding/binary"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Metric names, in the style of the semantic conventions' http.server.* metrics.
const (
	MetricRequests  = "http.server.route.requests"
	MetricErrors    = "http.server.route.errors"
	MetricDuration  = "http.server.route.duration"
	MetricQuantiles = "http.server.route.duration.quantiles"
)

// Attribute keys written on data points and resources.
const (
	AttrService     = "service.name"
	AttrEnvironment = "deployment.environment.name"
	AttrMethod      = "http.request.method"
	AttrRoute       = "http.route"
	AttrStatusCode  = "http.response.status_code"
	AttrStatusClass = "http.response.status_class"
	// AttrOverflow marks the series that takes every request beyond max_series, as the OpenTelemetry SDKs do.
	AttrOverflow = "otel.metric.overflow"
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
}

// Store holds the series of one connector. Not safe for concurrent use: the connector serialises calls.
type Store struct {
	cfg       Config
	series    map[string]*Series
	overflow  *Series
	key       []byte
	lastFlush pcommon.Timestamp
}

// NewStore returns an empty store whose first interval starts at now.
func NewStore(cfg Config, now pcommon.Timestamp) *Store {
	return &Store{cfg: cfg, series: make(map[string]*Series), lastFlush: now}
}

// Len returns the number of series held, the overflow series included.
func (s *Store) Len() int {
	if s.overflow != nil {
		return len(s.series) + 1
	}
	return len(s.series)
}

// Record adds count requests of seconds (a sampled span stands for several) to their series and reports whether the
// series cap sent them to the overflow series. seconds must be finite and non-negative, count at least 1; end is the
// span's end time (for exemplars), now the arrival time (for expiry).
func (s *Store) Record(attrs *Attributes, seconds float64, count uint64, isError bool, traceID pcommon.TraceID, spanID pcommon.SpanID, end, now pcommon.Timestamp) (overflowed bool) {
	s.key = appendKey(s.key[:0], attrs)
	series, ok := s.series[string(s.key)]
	if !ok {
		if len(s.series) >= s.cfg.MaxSeries {
			if s.overflow == nil {
				s.overflow = s.newSeries(Attributes{}, now)
				s.overflow.isOverflow = true
			}
			series, overflowed = s.overflow, true
		} else {
			series = s.newSeries(copyAttributes(attrs), now)
			s.series[string(s.key)] = series
		}
	}
	series.record(seconds, count, isError, traceID, spanID, end, s.cfg.MaxExemplars)
	series.lastSeen = now
	return overflowed
}

func (s *Store) newSeries(attrs Attributes, now pcommon.Timestamp) *Series {
	series := &Series{Attrs: attrs, Sketch: newSketch(), start: now}
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

// Flush drops series idle for longer than the expiry, writes the live ones as metrics and starts a new interval.
// visit, when not nil, sees every series recorded into during the interval before its interval state is reset.
func (s *Store) Flush(now pcommon.Timestamp, visit func(*Series)) pmetric.Metrics {
	md := pmetric.NewMetrics()
	expiredBefore := now - pcommon.Timestamp(s.cfg.Expiry.Nanoseconds())
	keys := make([]string, 0, len(s.series))
	for k, series := range s.series {
		if series.lastSeen < expiredBefore {
			delete(s.series, k)
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w := newWriter(md, &s.cfg, now)
	for _, k := range keys {
		s.flushSeries(w, s.series[k], now, visit)
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
