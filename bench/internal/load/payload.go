// Package load builds realistic OTLP trace requests once, encodes them once, and replays the bytes over OTLP/gRPC
// at a fixed rate or flat out, counting acknowledged spans. Its own cost per span is a memcpy into the gRPC frame,
// so that the collector is what a benchmark measures.
package load

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Shape says what requests a payload holds.
type Shape struct {
	Routes int // distinct FastAPI-like routes
	// RawShare is the share of requests reported with a raw path (an id in it) and no http.route.
	RawShare float64
	// DistinctPaths, when set, gives every request its own raw path no id rule recognises: the cardinality attack.
	DistinctPaths bool
	// SingleRoute sends every request to one route with status 200: the accuracy input.
	SingleRoute bool
}

// Realistic is the mix of the throughput runs: 50 routes, a third raw, 2-5 children per request.
var Realistic = Shape{Routes: 50, RawShare: 1.0 / 3}

// Payload is a set of encoded export requests.
type Payload struct {
	Requests [][]byte // encoded ExportTraceServiceRequest
	Spans    []int    // spans in each request
	// Latencies holds every server span's duration, in request order (the accuracy run's ground truth).
	Latencies []time.Duration
}

// Build makes count export requests of perRequest HTTP requests each (a server span and 2-5 children each).
func Build(shape Shape, count, perRequest int, seed uint64) (*Payload, error) {
	rng := rand.New(rand.NewPCG(seed, 11))
	p := &Payload{}
	seq := 0
	for range count {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		service := fmt.Sprintf("bench-svc-%d", rng.IntN(4))
		if shape.SingleRoute {
			service = "bench-svc-0" // one series per variant: the quantiles compare one distribution
		}
		rs.Resource().Attributes().PutStr("service.name", service)
		rs.Resource().Attributes().PutStr("deployment.environment.name", "production")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		now := pcommon.NewTimestampFromTime(time.Now())
		for range perRequest {
			seq++
			d := latency(rng, shape.SingleRoute)
			p.Latencies = append(p.Latencies, d)
			addRequest(spans, rng, shape, seq, now, d)
		}
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			return nil, err
		}
		p.Requests = append(p.Requests, b)
		p.Spans = append(p.Spans, td.SpanCount())
	}
	return p, nil
}

// latency is lognormal (median 40 ms) with a 3% slow tail around 1.2 s; the accuracy input adds a cache-hit mode.
func latency(rng *rand.Rand, bimodal bool) time.Duration {
	s := math.Exp(math.Log(0.04) + 0.8*rng.NormFloat64())
	switch p := rng.Float64(); {
	case p < 0.03:
		s = math.Exp(math.Log(1.2) + 0.4*rng.NormFloat64())
	case bimodal && p < 0.5:
		s = math.Exp(math.Log(0.002) + 0.3*rng.NormFloat64())
	}
	return time.Duration(math.Min(s, 30) * float64(time.Second))
}

func addRequest(spans ptrace.SpanSlice, rng *rand.Rand, shape Shape, seq int, end pcommon.Timestamp, d time.Duration) {
	r := rng.IntN(max(shape.Routes, 1))
	template, path := fmt.Sprintf("/api/v1/resource%d/{item_id}", r), fmt.Sprintf("/api/v1/resource%d/%d", r, rng.IntN(1_000_000))
	raw := rng.Float64() < shape.RawShare
	status := int64(200)
	switch p := rng.Float64(); {
	case shape.SingleRoute:
		template, path, raw = "/api/v1/items/{item_id}", "/api/v1/items/1", false
	case shape.DistinctPaths:
		path, raw = fmt.Sprintf("/search/q%dx", seq), true
	case p < 0.02:
		status = 500
	case p < 0.07:
		status = 404
	}
	var traceID pcommon.TraceID
	var spanID pcommon.SpanID
	putUint64s(traceID[:], rng.Uint64(), rng.Uint64())
	putUint64s(spanID[:], rng.Uint64())
	server := spans.AppendEmpty()
	server.SetTraceID(traceID)
	server.SetSpanID(spanID)
	server.SetKind(ptrace.SpanKindServer)
	server.SetStartTimestamp(end - pcommon.Timestamp(d))
	server.SetEndTimestamp(end)
	a := server.Attributes()
	a.PutStr("http.request.method", "GET")
	a.PutStr("url.path", path)
	a.PutInt("http.response.status_code", status)
	if raw {
		server.SetName("GET " + path)
	} else {
		server.SetName("GET " + template)
		a.PutStr("http.route", template)
	}
	if status >= 500 {
		server.Status().SetCode(ptrace.StatusCodeError)
	}
	if shape.SingleRoute || shape.DistinctPaths {
		return // the accuracy and cardinality inputs are server spans only
	}
	for c := range 2 + rng.IntN(4) {
		child := spans.AppendEmpty()
		child.SetTraceID(traceID)
		child.SetParentSpanID(spanID)
		var id pcommon.SpanID
		putUint64s(id[:], rng.Uint64())
		child.SetSpanID(id)
		child.SetKind(ptrace.SpanKindClient)
		child.SetName(fmt.Sprintf("SELECT table%d", c))
		child.SetStartTimestamp(end - pcommon.Timestamp(d/2))
		child.SetEndTimestamp(end - pcommon.Timestamp(d/4))
		child.Attributes().PutStr("db.system", "postgresql")
	}
}

func putUint64s(b []byte, words ...uint64) {
	for i, w := range words {
		for j := range 8 {
			b[i*8+j] = byte(w >> (8 * j))
		}
	}
}
