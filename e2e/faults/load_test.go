package faults

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/status"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// loadTraceMark starts the trace id of every load span, so that the sink tells load spans from probes.
var loadTraceMark = [8]byte{'f', 'a', 'u', 'l', 't', 'l', 'o', 'd'}

// load sends HTTP server spans with unique sequence numbers (in their span ids) at a steady rate, from several
// workers, like a fleet of SDKs that do not retry, and remembers which spans the collector acknowledged.
type load struct {
	col            *harness.Collector
	environment    string // deployment.environment.name: where the gateway routes the load
	spansPerSecond int
	batch          int
	workers        int
	spansPerTrace  int // 1: every span its own trace

	next    atomic.Uint64
	mu      sync.Mutex
	acked   []uint64
	refused map[string]int // spans per gRPC status code
}

func newLoad(col *harness.Collector, spansPerSecond, workers int) *load {
	return &load{col: col, environment: "development", spansPerSecond: spansPerSecond, batch: 100, workers: workers, spansPerTrace: 1, refused: map[string]int{}}
}

// run sends until ctx ends and returns when every worker has its last answer.
func (l *load) run(ctx context.Context) error {
	conn, err := l.col.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	interval := time.Duration(int64(time.Second) * int64(l.batch*l.workers) / int64(l.spansPerSecond))
	var wg sync.WaitGroup
	for w := 0; w < l.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				first := l.next.Add(uint64(l.batch)) - uint64(l.batch) + 1
				req := ptraceotlp.NewExportRequestFromTraces(loadTracesGrouped(l.environment, first, l.batch, l.spansPerTrace))
				callCtx, cancel := context.WithTimeout(l.col.OutgoingContext(context.Background()), 5*time.Second)
				_, err := client.Export(callCtx, req)
				cancel()
				l.record(first, err)
			}
		}()
	}
	wg.Wait()
	return nil
}

// start runs the load in the background; the stop it returns ends it and waits for the last answers.
func (l *load) start(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func (l *load) record(first uint64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.refused[status.Code(err).String()] += l.batch
		return
	}
	for i := 0; i < l.batch; i++ {
		l.acked = append(l.acked, first+uint64(i))
	}
}

func (l *load) result() (acked []uint64, sent int, refused map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	refused = map[string]int{}
	for k, v := range l.refused {
		refused[k] = v
	}
	return append([]uint64(nil), l.acked...), int(l.next.Load()), refused
}

func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// loadTraces builds n server spans of a FastAPI-like service in development, numbered from first.
func loadTraces(first uint64, n int) ptrace.Traces { return loadTracesIn("development", first, n) }

// loadTracesIn builds n server spans of a FastAPI-like service in environment, numbered from first.
func loadTracesIn(environment string, first uint64, n int) ptrace.Traces {
	return loadTracesGrouped(environment, first, n, 1)
}

// loadTracesGrouped is loadTracesIn with perTrace consecutive spans sharing a trace id.
func loadTracesGrouped(environment string, first uint64, n, perTrace int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "faults-load")
	rs.Resource().Attributes().PutStr("deployment.environment.name", environment)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	spans.EnsureCapacity(n)
	end := time.Now()
	for i := 0; i < n; i++ {
		seq := first + uint64(i)
		span := spans.AppendEmpty()
		var tid pcommon.TraceID
		copy(tid[:8], loadTraceMark[:])
		binary.BigEndian.PutUint64(tid[8:], seq/uint64(perTrace))
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], seq)
		span.SetTraceID(tid)
		span.SetSpanID(sid)
		span.SetKind(ptrace.SpanKindServer)
		span.SetName("GET /items/{item_id}")
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Duration(seq%97+1) * time.Millisecond)))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		a := span.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.path", fmt.Sprintf("/items/%d", seq%1000))
		a.PutStr("http.route", "/items/{item_id}")
		code := int64(200)
		if seq%50 == 0 {
			code = 500
			span.Status().SetCode(ptrace.StatusCodeError)
		}
		a.PutInt("http.response.status_code", code)
	}
	return td
}
