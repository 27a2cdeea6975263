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
// (the processor mutates spans), made and collected outside the timer (spanmix.RunOnCopies). ns/span counts every
// span, children included.
func BenchmarkProcessor(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Slow.Default = 200_000_000 // 200ms
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	spanmix.RunOnCopies(b, spanmix.Traces(1, 1000, 10), func(td ptrace.Traces) error { return p.ConsumeTraces(context.Background(), td) })
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
