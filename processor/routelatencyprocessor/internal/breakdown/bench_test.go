package breakdown

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// orderRequest is the shape of the GET /orders/{order_id}: six queries, five of them one statement (an
// N+1 loop), and one downstream call, in 34 ms.
func orderRequest() (RequestSpan, []Span) {
	spans := []Span{child(2, 1, 1, 5, sqlite)}
	spans[0].Statement = "SELECT * FROM orders WHERE id = ?"
	for i := range 5 {
		s := child(uint64(3+i), 1, int64(6+3*i), int64(8+3*i), sqlite)
		s.Statement = "SELECT * FROM items WHERE order_id = ?"
		spans = append(spans, s)
	}
	spans = append(spans, child(9, 1, 22, 31, payments))
	return request(34 * ms), spans
}

// BenchmarkCompute reports the cost of one request's breakdown, per span of its tree.
func BenchmarkCompute(b *testing.B) {
	req, spans := orderRequest()
	var c Computer
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Compute(req, spans)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(len(spans)+1)), "ns/span")
}

// BenchmarkStore reports the cost of holding a request's descendants and recording it, per span: with the
// descendants first, as an SDK exports them (each span when it ends), and with the request first, as a batch that
// lists the server span before its children does.
func BenchmarkStore(b *testing.B) {
	for _, order := range []string{"descendants-first", "request-first"} {
		b.Run(order, func(b *testing.B) {
			req, spans := orderRequest()
			s := NewStore(Limits{Grace: time.Second, MaxSpans: 1 << 20, MaxSpansPerTrace: 1000})
			now := t0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				trace := pcommon.TraceID{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}
				request := Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: req}
				if order == "request-first" {
					s.AddRequest(request, now)
				}
				for _, sp := range spans {
					s.AddSpan(trace, shopID, sp, now)
				}
				if order == "descendants-first" {
					s.AddRequest(request, now)
				}
				if i%1000 == 0 {
					now = now.Add(100 * time.Millisecond)
					s.Sweep(now, func(Request, Split) {})
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(len(spans)+1)), "ns/span")
		})
	}
}
