package routelatencyconnector

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadata"
)

// FuzzConsumeTraces decodes arbitrary bytes as OTLP protobuf and, when they decode, consumes and flushes them:
// whatever the spans say (timestamps, kinds, attribute types, strings), the connector must not panic and must keep
// within its series cap.
func FuzzConsumeTraces(f *testing.F) {
	marshaler := &ptrace.ProtoMarshaler{}
	for _, td := range []ptrace.Traces{mixedTraffic(), traces(mixedTraffic2()...), ptrace.NewTraces()} {
		b, err := marshaler.MarshalTraces(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	unmarshaler := &ptrace.ProtoUnmarshaler{}
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := unmarshaler.UnmarshalTraces(data)
		if err != nil {
			return
		}
		cfg := createDefaultConfig().(*Config)
		cfg.MaxSeries = 8
		c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), wallClock{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		c.flush(context.Background())
		if c.store.Len() > cfg.MaxSeries+1 {
			t.Fatalf("%d series over a cap of %d", c.store.Len(), cfg.MaxSeries)
		}
	})
}
