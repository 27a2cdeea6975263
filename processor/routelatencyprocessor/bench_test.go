package routelatencyprocessor

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/metadata"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/spanmix"
)

// BenchmarkProcessor runs the processor over the realistic mix. Each iteration processes a fresh copy of one batch
// (the processor mutates spans); the copy is made outside the timer. ns/span counts every span, children included.
func BenchmarkProcessor(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Slow.Default = 200_000_000 // 200ms
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	batch := spanmix.Traces(1, 1000, 10)
	var copies []ptrace.Traces
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%64 == 0 {
			b.StopTimer()
			copies = spanmix.Copies(batch, 64)
			b.StartTimer()
		}
		if err := p.ConsumeTraces(context.Background(), copies[i%64]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch.SpanCount()), "ns/span")
}

// BenchmarkProcessorParallel is BenchmarkProcessor with every core's receiver goroutines calling in at once, each with
// batches of its own services: run with -cpu 1,2 to see how the processor scales.
func BenchmarkProcessorParallel(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Slow.Default = 200_000_000 // 200ms
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	spanmix.RunParallelOnCopies(b, func(td ptrace.Traces) error { return p.ConsumeTraces(context.Background(), td) })
}
