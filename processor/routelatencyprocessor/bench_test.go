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
// batches of its own services: run with -cpu 1,2 to see how the processor scales. The processor changes spans, so
// each iteration copies its batch first, inside the timer (RunParallel cannot stop it per goroutine):
// BenchmarkProcessorParallelCopy measures the copy alone, to take off.
func BenchmarkProcessorParallel(b *testing.B) { benchmarkProcessorParallel(b, true) }

// BenchmarkProcessorParallelCopy is BenchmarkProcessorParallel's copying, without the processor.
func BenchmarkProcessorParallelCopy(b *testing.B) { benchmarkProcessorParallel(b, false) }

func benchmarkProcessorParallel(b *testing.B, process bool) {
	cfg := createDefaultConfig().(*Config)
	cfg.Slow.Default = 200_000_000 // 200ms
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	spanmix.RunParallel(b, func(batch ptrace.Traces) error {
		td := ptrace.NewTraces()
		batch.CopyTo(td)
		if !process {
			return nil
		}
		return p.ConsumeTraces(context.Background(), td)
	})
}
