package routelatencyconnector

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/spanmix"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadata"
)

// BenchmarkConnector aggregates the realistic mix; the connector reads spans only, so one batch is reused.
// ns/span counts every span, children included.
func BenchmarkConnector(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Breakdown.Enabled = false // BenchmarkConnectorBreakdown measures it
	cfg.Errors.Enabled = false    // BenchmarkConnectorDashboard measures it
	benchmarkOneBatch(b, cfg, spanmix.Traces(1, 1000, 10))
}

// benchmarkOneBatch runs the connector of cfg on batch again and again (it reads spans only, so one batch serves),
// after a first pass that makes the series, as in steady state.
func benchmarkOneBatch(b *testing.B, cfg *Config, batch ptrace.Traces) {
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), wallClock{})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.ConsumeTraces(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.ConsumeTraces(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch.SpanCount()), "ns/span")
}

// BenchmarkConnectorSLO is BenchmarkConnector with three objectives, one matching every route (each request is
// counted against it) and two matching some.
func BenchmarkConnectorSLO(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Breakdown.Enabled, cfg.Errors.Enabled = false, false
	cfg.SLOs = []slo.Objective{
		{Name: "availability", Target: 99.9, Indicator: slo.Availability},
		{Name: "latency", Route: "/api/v1/resource1*", Target: 99, Indicator: slo.Latency, Threshold: 100 * time.Millisecond},
		{Name: "service-0", Service: "service-0", Target: 99, Indicator: slo.Latency, Threshold: time.Second},
	}
	benchmarkOneBatch(b, cfg, spanmix.Traces(1, 1000, 10))
}

// BenchmarkConnectorDashboard is BenchmarkConnector with the dashboard's per-request work on: the versions table
// (each request counted under its service.version) and the error groups (the mix's 500s grouped as error statuses).
// The history itself is fed at flushes, outside the timer.
func BenchmarkConnectorDashboard(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Breakdown.Enabled = false
	cfg.Dashboard.Endpoint = "127.0.0.1:0" // not started: nothing listens
	batch := spanmix.Traces(1, 1000, 10)
	rss := batch.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rss.At(i).Resource().Attributes().PutStr("service.version", "1.4.0")
	}
	benchmarkOneBatch(b, cfg, batch)
}

// BenchmarkConnectorBreakdown is BenchmarkConnector with the breakdown on (the default): every span also goes to
// the join, and every request is recorded a grace later (see benchmarkFreshTraces). The breakdown's own cost is its
// ns/span less BenchmarkConnectorFreshTraces'.
func BenchmarkConnectorBreakdown(b *testing.B) { benchmarkFreshTraces(b, true, 500_000, 0) }

// BenchmarkConnectorBreakdownShortGrace is BenchmarkConnectorBreakdown with a 200 ms grace: the join holds a
// twenty-fifth of the records, which fit in the caches. About the same cost says that the breakdown's cost is its
// work, not the memory its records take.
func BenchmarkConnectorBreakdownShortGrace(b *testing.B) {
	benchmarkFreshTraces(b, true, 500_000, 200*time.Millisecond)
}

// BenchmarkConnectorBreakdownAtBound is BenchmarkConnectorBreakdown with the shipped max_spans (10,000): at the
// benchmark's rate the join is full and each batch makes its room by recording the requests that waited longest
// (after about 0.2 s instead of the 5 s grace), as a gateway under more load than its max_spans covers does.
func BenchmarkConnectorBreakdownAtBound(b *testing.B) {
	benchmarkFreshTraces(b, true, createDefaultConfig().(*Config).Breakdown.MaxSpans, 0)
}

// BenchmarkConnectorFreshTraces is BenchmarkConnectorBreakdown with the breakdown off: the same batches, whose
// routes' series are spread over more memory than BenchmarkConnector's one batch.
func BenchmarkConnectorFreshTraces(b *testing.B) { benchmarkFreshTraces(b, false, 0, 0) }

// benchmarkFreshTraces feeds traces never seen before (their ids renewed outside the timer), 1,000 requests every
// 100 ms of the fake clock (45,000 spans/s), with the breakdown on or off. The join runs grace (0: the default 5 s;
// a sweep every tenth of it), bounded by maxSpans: 500,000 holds the ~230,000 records of the default's steady
// state, so that every span goes the whole way.
func benchmarkFreshTraces(b *testing.B, breakdown bool, maxSpans int, grace time.Duration) {
	cfg := createDefaultConfig().(*Config)
	cfg.Breakdown.Enabled = breakdown
	if breakdown {
		cfg.Breakdown.MaxSpans = maxSpans
	}
	if grace > 0 {
		cfg.Breakdown.Grace = grace
	}
	clock := &fakeClock{now: time.Now(), ticks: make(chan time.Time)}
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), clock)
	if err != nil {
		b.Fatal(err)
	}
	batches := make([]ptrace.Traces, 10)
	for i := range batches {
		batches[i] = spanmix.Traces(uint64(i+1), 1000, 10)
	}
	consume := func(i int) {
		batch := batches[i%len(batches)]
		b.StopTimer()
		renewTraceIDs(batch, uint64(i))
		b.StartTimer()
		clock.set(clock.Now().Add(100 * time.Millisecond))
		if err := c.ConsumeTraces(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	const warm = 200 // 20 s of the clock: series exist, and the join's queues, maps and free lists are in steady state
	for i := range warm {
		consume(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		consume(warm + i)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batches[0].SpanCount()), "ns/span")
}

// renewTraceIDs gives the batch's traces ids of generation gen: spans of one trace keep one id, and no generation
// repeats another's.
func renewTraceIDs(batch ptrace.Traces, gen uint64) {
	rss := batch.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				id := spans.At(k).TraceID()
				binary.LittleEndian.PutUint64(id[:8], gen)
				spans.At(k).SetTraceID(id)
			}
		}
	}
}

// BenchmarkConnectorParallel is BenchmarkConnector with every core's receiver goroutines calling in at once, as a
// gateway's OTLP receiver does, each goroutine with batches of its own clients (services): run with -cpu 1,2,4 to
// see how the connector scales.
func BenchmarkConnectorParallel(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), wallClock{})
	if err != nil {
		b.Fatal(err)
	}
	spanmix.RunParallel(b, func(batch ptrace.Traces) error { return c.ConsumeTraces(context.Background(), batch) })
}

// BenchmarkPipeline is what the shipped configs run: the processor resolves and writes the route, the connector
// reuses it. The copies the processor needs (it mutates spans) are made and collected outside the timer
// (spanmix.RunOnCopies).
func BenchmarkPipeline(b *testing.B) {
	factory := routelatencyprocessor.NewFactory()
	cfg := createDefaultConfig().(*Config)
	cfg.Breakdown.Enabled = false // replaying one batch's trace ids would measure the join's bounds; BenchmarkConnectorBreakdown measures it
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), wallClock{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := factory.CreateTraces(context.Background(), processortest.NewNopSettings(factory.Type()), factory.CreateDefaultConfig(), c)
	if err != nil {
		b.Fatal(err)
	}
	spanmix.RunOnCopies(b, spanmix.Traces(1, 1000, 10), func(td ptrace.Traces) error { return p.ConsumeTraces(context.Background(), td) })
}

// BenchmarkReference encodes the mix as an OTLP protobuf request: work of the same kind as the component's (walking
// spans, attributes and strings) that this project does not write. TestCostBudget scales its budgets by how much
// slower it runs than when they were documented, so that a slow day of a shared machine is not taken for a
// regression.
func BenchmarkReference(b *testing.B) {
	batch := spanmix.Traces(1, 1000, 10)
	var m ptrace.ProtoMarshaler
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.MarshalTraces(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch.SpanCount()), "ns/span")
}
