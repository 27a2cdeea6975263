// Package otlpintake is an OTLP/HTTP intake on loopback for the end-to-end suites, shaped like New Relic's OTLP
// endpoint: it takes protobuf traces and metrics on /v1/traces and /v1/metrics, gzip or zstd, refuses a request
// without the expected api-key header (403) or over the payload limit (413), decodes each request with
// OpenTelemetry's own types and records what arrived, with the largest attribute it saw.
package otlpintake

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"sync"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// MaxPayloadBytes is New Relic's limit on one request, as sent (compressed).
const MaxPayloadBytes = 1_000_000

// Span is a received span with what New Relic would store of it.
type Span struct {
	Service, Environment, Name string
	TraceID                    pcommon.TraceID
	SpanID                     pcommon.SpanID
	Error                      bool
	// Attributes is the span's own attributes as received; StoredAttributes counts them with the resource's, as
	// New Relic stores them on one event.
	Attributes       map[string]any
	StoredAttributes int
}

// Point is one received sum or histogram data point.
type Point struct {
	Metric      string
	Attributes  map[string]any
	Temporality pmetric.AggregationTemporality
	Value       float64 // a sum's value, a histogram's count
}

// Largest is the largest of each limited quantity seen in any attribute map (span, span event, resource).
type Largest struct {
	ValueBytes, KeyBytes, ArrayEntries, StoredAttributes, PayloadBytes int
}

// Intake records everything it accepted.
type Intake struct {
	URL    string
	apiKey string
	server *http.Server

	mu         sync.Mutex
	down       bool
	keys       map[string]int
	spans      []Span
	points     []Point
	largest    Largest
	refused    map[int]int
	decodeErrs []string
}

// Start serves on a fresh loopback port until Close, accepting requests that carry apiKey.
func Start(apiKey string) (*Intake, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	in := &Intake{URL: "http://" + l.Addr().String(), apiKey: apiKey, keys: map[string]int{}, refused: map[int]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", in.handle(in.traces))
	mux.HandleFunc("POST /v1/metrics", in.handle(in.metrics))
	in.server = &http.Server{Handler: mux}
	go func() { _ = in.server.Serve(l) }()
	return in, nil
}

// Close stops the server.
func (in *Intake) Close() error { return in.server.Close() }

// SetDown makes the intake answer every request with 503 (an outage) until SetDown(false).
func (in *Intake) SetDown(down bool) {
	in.mu.Lock()
	in.down = down
	in.mu.Unlock()
}

func (in *Intake) handle(decode func([]byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("api-key")
		body, err := io.ReadAll(r.Body)
		in.mu.Lock()
		in.keys[key]++
		status := http.StatusOK
		switch {
		case in.down:
			status = http.StatusServiceUnavailable
		case key != in.apiKey:
			status = http.StatusForbidden
		case len(body) > MaxPayloadBytes:
			status = http.StatusRequestEntityTooLarge
		}
		in.largest.PayloadBytes = max(in.largest.PayloadBytes, len(body))
		if status != http.StatusOK {
			in.refused[status]++
		}
		in.mu.Unlock()
		if err != nil || status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
		raw, err := Decompress(r.Header.Get("Content-Encoding"), body)
		if err == nil {
			err = decode(raw)
		}
		if err != nil {
			in.mu.Lock()
			in.decodeErrs = append(in.decodeErrs, fmt.Sprintf("%s: %v", r.URL.Path, err))
			in.mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}
}

// Decompress undoes an OTLP/HTTP request body's Content-Encoding (none, gzip or zstd).
func Decompress(encoding string, body []byte) ([]byte, error) {
	switch encoding {
	case "":
		return body, nil
	case "gzip":
		r, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	case "zstd":
		r, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	return nil, fmt.Errorf("unsupported Content-Encoding %q", encoding)
}

func (in *Intake) traces(raw []byte) error {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		return err
	}
	td := req.Traces()
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		res := rs.Resource().Attributes()
		in.measure(res, 0)
		service, _ := res.Get("service.name")
		env, _ := res.Get("deployment.environment.name")
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				stored := s.Attributes().Len() + res.Len()
				in.measure(s.Attributes(), stored)
				for e := 0; e < s.Events().Len(); e++ {
					in.measure(s.Events().At(e).Attributes(), s.Events().At(e).Attributes().Len())
				}
				in.spans = append(in.spans, Span{Service: service.Str(), Environment: env.Str(), Name: s.Name(),
					TraceID: s.TraceID(), SpanID: s.SpanID(), Error: s.Status().Code() == ptrace.StatusCodeError,
					Attributes: s.Attributes().AsRaw(), StoredAttributes: stored})
			}
		}
	}
	return nil
}

// measure updates the largest value, key, array and attribute count seen (the caller holds the lock).
func (in *Intake) measure(m pcommon.Map, stored int) {
	in.largest.StoredAttributes = max(in.largest.StoredAttributes, stored)
	m.Range(func(k string, v pcommon.Value) bool {
		in.largest.KeyBytes = max(in.largest.KeyBytes, len(k))
		switch v.Type() {
		case pcommon.ValueTypeStr:
			in.largest.ValueBytes = max(in.largest.ValueBytes, len(v.Str()))
		case pcommon.ValueTypeSlice:
			in.largest.ArrayEntries = max(in.largest.ArrayEntries, v.Slice().Len())
		}
		return true
	})
}

func (in *Intake) metrics(raw []byte) error {
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		return err
	}
	md := req.Metrics()
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				in.recordMetric(ms.At(k))
			}
		}
	}
	return nil
}

func (in *Intake) recordMetric(m pmetric.Metric) {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			in.points = append(in.points, Point{m.Name(), dps.At(i).Attributes().AsRaw(), m.Sum().AggregationTemporality(), float64(dps.At(i).IntValue()) + dps.At(i).DoubleValue()})
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			in.points = append(in.points, Point{m.Name(), dps.At(i).Attributes().AsRaw(), m.ExponentialHistogram().AggregationTemporality(), float64(dps.At(i).Count())})
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			in.points = append(in.points, Point{m.Name(), dps.At(i).Attributes().AsRaw(), m.Histogram().AggregationTemporality(), float64(dps.At(i).Count())})
		}
	}
}

// Spans returns a copy of the spans received.
func (in *Intake) Spans() []Span {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Span(nil), in.spans...)
}

// Points returns a copy of the sum and histogram points received.
func (in *Intake) Points() []Point {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Point(nil), in.points...)
}

// APIKeys counts the requests by the api-key header they carried.
func (in *Intake) APIKeys() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return maps.Clone(in.keys)
}

// Largest returns the largest of each limited quantity seen.
func (in *Intake) Largest() Largest {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.largest
}

// Refused counts the requests refused, by HTTP status (outage, wrong key, too large).
func (in *Intake) Refused() map[int]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return maps.Clone(in.refused)
}

// DecodeErrors lists the requests that did not decode.
func (in *Intake) DecodeErrors() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.decodeErrs...)
}
