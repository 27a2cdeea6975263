// Package spanmix builds the realistic span mix that the component's benchmarks run on: FastAPI-like server spans
// over 50 routes, a third of them reported only as raw paths with ids, 2 to 5 child spans per request, a status mix
// with errors and lognormal latencies; and drives parallel benchmarks with it (RunParallel, RunParallelOnCopies).
package spanmix // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/spanmix"

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Routes is the number of distinct route templates in the mix.
const Routes = 50

// Traces returns one batch of requests requests (each a server span and its children) for services services.
func Traces(seed uint64, requests, services int) ptrace.Traces {
	rng := rand.New(rand.NewPCG(seed, 7))
	td := ptrace.NewTraces()
	now := pcommon.NewTimestampFromTime(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	perService := make([]ptrace.SpanSlice, services)
	for s := range services {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("service-%d", s))
		rs.Resource().Attributes().PutStr("deployment.environment.name", "production")
		perService[s] = rs.ScopeSpans().AppendEmpty().Spans()
	}
	for i := range requests {
		spans := perService[i%services]
		r := rng.IntN(Routes)
		id := rng.IntN(1_000_000)
		template, path := fmt.Sprintf("/api/v1/resource%d/{item_id}", r), fmt.Sprintf("/api/v1/resource%d/%d", r, id)
		status := int64(200)
		switch p := rng.Float64(); {
		case p < 0.02:
			status = 500
		case p < 0.07:
			status = 404
		}
		d := pcommon.Timestamp(math.Exp(math.Log(0.05)+rng.NormFloat64()) * 1e9)
		var traceID pcommon.TraceID
		binaryPut(traceID[:], rng.Uint64(), rng.Uint64())
		server := spans.AppendEmpty()
		server.SetTraceID(traceID)
		server.SetSpanID(spanID(rng))
		server.SetKind(ptrace.SpanKindServer)
		server.SetStartTimestamp(now - d)
		server.SetEndTimestamp(now)
		a := server.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.path", path)
		a.PutStr("url.scheme", "http")
		a.PutInt("http.response.status_code", status)
		if rng.Float64() < 0.66 {
			server.SetName("GET " + template)
			a.PutStr("http.route", template)
		} else {
			server.SetName("GET " + path) // the app reported no route: a raw path with an id
		}
		if status >= 500 {
			server.Status().SetCode(ptrace.StatusCodeError)
		}
		for c := range 2 + rng.IntN(4) {
			child := spans.AppendEmpty()
			child.SetTraceID(traceID)
			child.SetParentSpanID(server.SpanID())
			child.SetSpanID(spanID(rng))
			child.SetKind(ptrace.SpanKindClient)
			child.SetName(fmt.Sprintf("SELECT table%d", c))
			child.SetStartTimestamp(now - d/2)
			child.SetEndTimestamp(now - d/4)
			child.Attributes().PutStr("db.system", "postgresql")
		}
	}
	return td
}

func spanID(rng *rand.Rand) pcommon.SpanID {
	var id pcommon.SpanID
	binaryPut(id[:], rng.Uint64())
	return id
}

func binaryPut(b []byte, words ...uint64) {
	for i, w := range words {
		for j := 0; j < 8; j++ {
			b[i*8+j] = byte(w >> (8 * j))
		}
	}
}

// Copies returns n copies of batch, for benchmarks of components that mutate what they get.
func Copies(batch ptrace.Traces, n int) []ptrace.Traces {
	out := make([]ptrace.Traces, n)
	for i := range out {
		out[i] = ptrace.NewTraces()
		batch.CopyTo(out[i])
	}
	return out
}

// RunOnCopies is the benchmark of a component that changes the spans it is given: it consumes fresh copies of
// batch, made with the timer stopped in rounds of copiesPerRound, and the round's garbage (the copies' and the
// component's own) is collected there too, so that the timer does not count collecting the copies. It reports
// ns/span.
func RunOnCopies(b *testing.B, batch ptrace.Traces, consume func(ptrace.Traces) error) {
	var copies []ptrace.Traces
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%copiesPerRound == 0 {
			b.StopTimer()
			copies = nil // the last round's copies go before the next are made
			copies = Copies(batch, copiesPerRound)
			runtime.GC()
			b.StartTimer()
		}
		if err := consume(copies[i%copiesPerRound]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch.SpanCount()), "ns/span")
}

// copiesPerRound is how many copies RunOnCopies and RunParallelOnCopies make at a time (per goroutine).
const copiesPerRound = 64

// ClientTraces is Traces(client, requests, services) with the services renamed after the client ("client-3-service-0"):
// the batches of one receiver goroutine's clients in parallel benchmarks, distinct from every other goroutine's.
func ClientTraces(client uint64, requests, services int) ptrace.Traces {
	batch := Traces(client, requests, services)
	rss := batch.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		attrs := rss.At(i).Resource().Attributes()
		name, _ := attrs.Get("service.name")
		attrs.PutStr("service.name", fmt.Sprintf("client-%d-%s", client, name.Str()))
	}
	return batch
}

// RunParallel is a parallel benchmark of a component as a gateway's receiver drives it: every core's goroutines call
// consume at once, each with ClientTraces of a client of its own (1,000 requests over 10 services). It reports
// ns/span.
func RunParallel(b *testing.B, consume func(ptrace.Traces) error) {
	var client atomic.Uint64
	spans := Traces(1, 1000, 10).SpanCount()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		batch := ClientTraces(client.Add(1), 1000, 10)
		for pb.Next() {
			if err := consume(batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}

// RunParallelOnCopies is RunParallel for a component that changes the spans it is given: one goroutine per core
// (GOMAXPROCS), each with a client of its own, consumes fresh copies of its client's batch. testing.B.RunParallel
// cannot stop the timer for one goroutine, so the benchmark runs in rounds: with the timer stopped, each goroutine's
// next copiesPerRound copies are made and the garbage of the round before is collected (the copies' and, a tenth of
// it, the component's own); then every goroutine consumes its copies at once. Rounds long enough (about 20 ms) that
// waiting for the slowest goroutine is a small part of each.
func RunParallelOnCopies(b *testing.B, consume func(ptrace.Traces) error) {
	workers := runtime.GOMAXPROCS(0)
	batches := make([]ptrace.Traces, workers)
	for w := range batches {
		batches[w] = ClientTraces(uint64(w+1), 1000, 10)
	}
	spans := batches[0].SpanCount()
	copies := make([][]ptrace.Traces, workers)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		round := min(copiesPerRound*workers, b.N-done)
		var wg sync.WaitGroup
		for w := range workers {
			share := round / workers
			if w < round%workers {
				share++
			}
			wg.Go(func() { copies[w] = Copies(batches[w], share) })
		}
		wg.Wait()
		runtime.GC()
		b.StartTimer()
		for w := range workers {
			wg.Go(func() {
				for _, td := range copies[w] {
					if err := consume(td); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		done += round
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}
