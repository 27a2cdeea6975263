package faults

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
)

// Overload: the backend drains sustainableSpans per second; the load offers ten times that for 60 s.
const (
	sustainableSpans = 5000
	overloadMemMiB   = 256 // MEMORY_LIMIT_MIB given to the gateway
	rssMarginMiB     = 64  // what the Go runtime and the process image add on top of the limited heap
)

// TestFault3Overload: RSS stays under the memory limit plus the margin, clients get retryable refusals, every
// acknowledged span is delivered, and health is green afterwards.
func TestFault3Overload(t *testing.T) {
	sink := startSeqSink(t, sustainableSpans)
	col := startGateway(t, sink, append(memoryLimited(overloadMemMiB), "EXPORT_QUEUE_SPANS=50000")...)
	s := sample(col, "otlp_grpc/jaeger")
	l := newLoad(col, 10*sustainableSpans, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// OTLP/HTTP clients in the same crowd, one request of one span every 100 ms: what do they get?
	httpAnswers := map[string]int{}
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		c := newRawClient(col)
		body := mustMarshal(t, probeTraces(probeOverloadHTTP, func(ptrace.Span) {}))
		for ctx.Err() == nil {
			httpAnswers[c.http("application/x-protobuf", "", body).status]++
			time.Sleep(100 * time.Millisecond)
		}
	}()
	start := time.Now()
	if err := l.run(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	<-httpDone
	acked, sent, refused := l.result()
	d := waitDelivered(t, sink, acked, 90*time.Second)
	s.finish()
	_, peak := memory(col.Pid())
	figures(t, "3 overload", "offered %.0f spans/s for %.0fs against a backend draining %d/s: acknowledged %d, refused %s; delivered %d distinct, lost after acknowledgement %d, duplicates %d; queue peak %.0f spans; peak RSS %.0f MiB (limit %d + margin %d)",
		float64(sent)/elapsed.Seconds(), elapsed.Seconds(), sustainableSpans, d.Acked, formatCounts(refused), d.Delivered, d.Lost, d.Duplicates, s.peakQueue, peak, overloadMemMiB, rssMarginMiB)
	if peak > overloadMemMiB+rssMarginMiB {
		t.Errorf("peak RSS %.0f MiB is over the memory limit %d MiB plus %d MiB", peak, overloadMemMiB, rssMarginMiB)
	}
	figures(t, "3 overload", "OTLP/HTTP requests in the same 60 s: %s", formatCounts(httpAnswers))
	for answer := range httpAnswers {
		if answer != "HTTP 200 OK" && answer != "HTTP 503 Service Unavailable" && answer != "HTTP 429 Too Many Requests" {
			t.Errorf("an OTLP/HTTP client got %q: refusals must be retryable (503, 429)", answer)
		}
	}
	if httpAnswers["HTTP 503 Service Unavailable"]+httpAnswers["HTTP 429 Too Many Requests"] == 0 {
		t.Errorf("no OTLP/HTTP request was refused under overload: %s", formatCounts(httpAnswers))
	}
	if total(refused) == 0 {
		t.Error("ten times the sustainable rate was never refused")
	}
	for code := range refused {
		if code != codes.Unavailable.String() && code != codes.ResourceExhausted.String() {
			t.Errorf("refusals must be retryable (Unavailable, ResourceExhausted), got %s", formatCounts(refused))
		}
	}
	if d.Lost > 0 {
		t.Errorf("%d acknowledged spans never reached the backend", d.Lost)
	}
	if err := healthy(col); err != nil {
		t.Error(err)
	}
}
