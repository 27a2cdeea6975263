// Package ddintake is a Datadog intake on loopback for the end-to-end suites: it accepts what the contrib datadog
// exporter sends (API key validation, trace payloads, APM stats, metric series, sketches) and the OTLP/HTTP traces
// that Datadog's OTLP traces intake takes, decodes each payload with Datadog's own (or OpenTelemetry's) protobuf and
// JSON types, and records what arrived.
package ddintake

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/DataDog/agent-payload/v5/gogen"
	"github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace"
	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/pb/sketchpb"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/proto"
)

// Span is a received span, as Datadog stores it.
type Span struct {
	Service, Name, Resource, Env string
	TraceID, SpanID              uint64
	Error                        int32
	Duration                     int64 // nanoseconds
	Meta                         map[string]string
}

// StatsGroup is one group of an APM stats payload: what Datadog's service and resource pages show for one service,
// resource and status code over one time bucket.
type StatsGroup struct {
	Env, Service, Name, Resource, SpanKind string
	HTTPStatusCode                         uint32
	Hits, Errors, TopLevelHits             uint64
	// OkSummary and ErrorSummary are the latency sketches (nanoseconds) of the ok and the failed hits; nil if empty.
	OkSummary, ErrorSummary *ddsketch.DDSketch
}

// Point is one received metric point: a series point or a sketch's count.
type Point struct {
	Metric string
	Tags   []string
	Value  float64 // series: the value; sketches: the count of the sketch
	Sketch bool
}

// Tag returns the value of a "key:value" tag, "" when absent.
func (p Point) Tag(key string) string {
	for _, t := range p.Tags {
		if v, ok := strings.CutPrefix(t, key+":"); ok {
			return v
		}
	}
	return ""
}

// Intake records everything the exporter sent.
type Intake struct {
	URL    string
	server *http.Server

	mu          sync.Mutex
	down        bool
	apiKeys     map[string]int
	spans       []Span
	points      []Point
	stats       int
	statsGroups []StatsGroup
	requests    map[string]int
	decodeErrs  []string
}

// Start serves on a fresh loopback port until Close.
func Start() (*Intake, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	in := &Intake{URL: "http://" + l.Addr().String(), apiKeys: map[string]int{}, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/validate", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"valid":true}`)
	})
	mux.HandleFunc("POST /api/v0.2/traces", in.decoded(in.traces))
	mux.HandleFunc("POST /v1/traces", in.decoded(in.otlpTraces))
	mux.HandleFunc("POST /api/v0.2/stats", in.decoded(in.statsPayload))
	mux.HandleFunc("POST /api/v2/series", in.decoded(in.series))
	mux.HandleFunc("POST /api/beta/sketches", in.decoded(in.sketches))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{}`) // metadata and anything else: accepted, counted by path
	})
	in.server = &http.Server{Handler: in.recordRequest(mux)}
	go func() { _ = in.server.Serve(l) }()
	return in, nil
}

// SetDown makes the intake answer every request with 503 (an outage) until SetDown(false).
func (in *Intake) SetDown(down bool) {
	in.mu.Lock()
	in.down = down
	in.mu.Unlock()
}

// Close stops the server.
func (in *Intake) Close() error { return in.server.Close() }

func (in *Intake) recordRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		if in.down {
			in.mu.Unlock()
			http.Error(w, "intake down", http.StatusServiceUnavailable)
			return
		}
		in.requests[r.Method+" "+r.URL.Path]++
		if key := r.Header.Get("DD-API-KEY"); key != "" {
			in.apiKeys[key]++
		}
		in.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// decoded reads the (gzip or deflate) body and hands it to decode; a payload that does not decode is a 400 and is
// recorded, so that a test sees it.
func (in *Intake) decoded(decode func(body []byte, contentType string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err == nil {
			err = decode(body, r.Header.Get("Content-Type"))
		}
		if err != nil {
			in.mu.Lock()
			in.decodeErrs = append(in.decodeErrs, fmt.Sprintf("%s: %v", r.URL.Path, err))
			in.mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{}`)
	}
}

func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		rd = gz
	case "deflate":
		z, err := zlib.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		rd = z
	}
	return io.ReadAll(io.LimitReader(rd, 256<<20))
}

func (in *Intake) traces(body []byte, _ string) error {
	var p trace.AgentPayload
	if err := proto.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("AgentPayload: %w", err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, tp := range p.TracerPayloads {
		for _, chunk := range tp.Chunks {
			for _, s := range chunk.Spans {
				in.spans = append(in.spans, Span{
					Service: s.Service, Name: s.Name, Resource: s.Resource, Env: tp.Env,
					TraceID: s.TraceID, SpanID: s.SpanID, Error: s.Error, Duration: s.Duration, Meta: s.Meta,
				})
			}
		}
	}
	if len(p.IdxTracerPayloads) > 0 {
		return fmt.Errorf("AgentPayload: %d payloads in the indexed format, which this intake does not read", len(p.IdxTracerPayloads))
	}
	return nil
}

// otlpTraces reads what Datadog's OTLP traces intake takes (OTLP/HTTP, protobuf) and records each span as Datadog
// names it: service from service.name, env from deployment.environment.name, and for a server span with http.route
// the resource "METHOD route" (Datadog's OTLP mapping), otherwise the span name.
func (in *Intake) otlpTraces(body []byte, contentType string) error {
	if !strings.HasPrefix(contentType, "application/x-protobuf") {
		return fmt.Errorf("OTLP traces: content type %q, the intake takes application/x-protobuf", contentType)
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		return fmt.Errorf("OTLP ExportTraceServiceRequest: %w", err)
	}
	var spans []Span
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		res := rss.At(i).Resource().Attributes()
		service, env := attrString(res, "service.name"), attrString(res, "deployment.environment.name")
		for j := 0; j < rss.At(i).ScopeSpans().Len(); j++ {
			list := rss.At(i).ScopeSpans().At(j).Spans()
			for k := 0; k < list.Len(); k++ {
				s := list.At(k)
				// Datadog's naming: resource.name first, then method and http.route for server spans, else the name.
				resource := s.Name()
				if r := attrString(s.Attributes(), "resource.name"); r != "" {
					resource = r
				} else if r := attrString(s.Attributes(), "http.route"); r != "" && s.Kind() == ptrace.SpanKindServer {
					resource = attrString(s.Attributes(), "http.request.method") + " " + r
				}
				tid, sid := s.TraceID(), s.SpanID()
				span := Span{
					Service: service, Name: s.Name(), Resource: resource, Env: env,
					TraceID: binary.BigEndian.Uint64(tid[8:]), SpanID: binary.BigEndian.Uint64(sid[:]),
					Duration: int64(s.EndTimestamp() - s.StartTimestamp()), Meta: map[string]string{},
				}
				if s.Status().Code() == ptrace.StatusCodeError {
					span.Error = 1
				}
				for key, v := range s.Attributes().All() {
					span.Meta[key] = v.AsString()
				}
				spans = append(spans, span)
			}
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.spans = append(in.spans, spans...)
	return nil
}

func attrString(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

func (in *Intake) statsPayload(body []byte, _ string) error {
	var p trace.StatsPayload
	if _, err := p.UnmarshalMsg(body); err != nil {
		return fmt.Errorf("StatsPayload (msgpack): %w", err)
	}
	var groups []StatsGroup
	for _, csp := range p.Stats {
		for _, bucket := range csp.Stats {
			for _, g := range bucket.Stats {
				ok, err := decodeSketch(g.OkSummary)
				if err != nil {
					return fmt.Errorf("StatsPayload okSummary of %s: %w", g.Resource, err)
				}
				failed, err := decodeSketch(g.ErrorSummary)
				if err != nil {
					return fmt.Errorf("StatsPayload errorSummary of %s: %w", g.Resource, err)
				}
				groups = append(groups, StatsGroup{
					Env: csp.Env, Service: g.Service, Name: g.Name, Resource: g.Resource, SpanKind: g.SpanKind,
					HTTPStatusCode: g.HTTPStatusCode, Hits: g.Hits, Errors: g.Errors, TopLevelHits: g.TopLevelHits,
					OkSummary: ok, ErrorSummary: failed,
				})
			}
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stats++
	in.statsGroups = append(in.statsGroups, groups...)
	return nil
}

// decodeSketch reads a DDSketch in its protobuf form, the way Datadog's stats carry latency summaries.
func decodeSketch(b []byte) (*ddsketch.DDSketch, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var pb sketchpb.DDSketch
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, err
	}
	return ddsketch.FromProto(&pb)
}

var _ msgp.Unmarshaler = (*trace.StatsPayload)(nil)

// series reads a v2 series payload: protobuf (what the exporter sends) or JSON (what the public API documents).
func (in *Intake) series(body []byte, contentType string) error {
	var p gogen.MetricPayload
	if strings.Contains(contentType, "json") {
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&p); err != nil {
			return fmt.Errorf("series JSON: %w", err)
		}
	} else if err := p.Unmarshal(body); err != nil {
		return fmt.Errorf("MetricPayload: %w", err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, s := range p.Series {
		for _, pt := range s.Points {
			in.points = append(in.points, Point{Metric: s.Metric, Tags: s.Tags, Value: pt.Value})
		}
	}
	return nil
}

func (in *Intake) sketches(body []byte, _ string) error {
	var p gogen.SketchPayload
	if err := p.Unmarshal(body); err != nil {
		return fmt.Errorf("SketchPayload: %w", err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, s := range p.Sketches {
		for _, d := range s.Dogsketches {
			in.points = append(in.points, Point{Metric: s.Metric, Tags: s.Tags, Value: float64(d.Cnt), Sketch: true})
		}
	}
	return nil
}

// Spans returns the spans received so far.
func (in *Intake) Spans() []Span {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Span(nil), in.spans...)
}

// Points returns the metric points received so far.
func (in *Intake) Points() []Point {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Point(nil), in.points...)
}

// APIKeys returns how many requests carried each DD-API-KEY value.
func (in *Intake) APIKeys() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string]int{}
	for k, v := range in.apiKeys {
		out[k] = v
	}
	return out
}

// StatsGroups returns the APM stats groups received so far.
func (in *Intake) StatsGroups() []StatsGroup {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]StatsGroup(nil), in.statsGroups...)
}

// StatsPayloads returns the number of APM stats payloads received.
func (in *Intake) StatsPayloads() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stats
}

// DecodeErrors lists payloads that did not decode.
func (in *Intake) DecodeErrors() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.decodeErrs...)
}

// Summary says in one line what arrived, for failure messages.
func (in *Intake) Summary() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	paths := make([]string, 0, len(in.requests))
	for p, n := range in.requests {
		paths = append(paths, fmt.Sprintf("%s x%d", p, n))
	}
	sort.Strings(paths)
	return fmt.Sprintf("datadog intake: %d spans, %d metric points, %d stats payloads, requests [%s], decode errors %v",
		len(in.spans), len(in.points), in.stats, strings.Join(paths, ", "), in.decodeErrs)
}
