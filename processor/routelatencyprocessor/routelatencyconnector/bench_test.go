package routelatencyconnector

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/spanmix"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadata"
)

// BenchmarkConnector aggregates the realistic mix; the connector reads spans only, so one batch is reused.
// ns/span counts every span, children included.
func BenchmarkConnector(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	batch := spanmix.Traces(1, 1000, 10)
	if err := c.ConsumeTraces(context.Background(), batch); err != nil { // warm: series exist, as in steady state
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
