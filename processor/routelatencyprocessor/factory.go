// Package routelatencyprocessor resolves the route of each HTTP request span, writes it into http.route, names the
// span after it and tags slow requests. Its sibling package routelatencyconnector turns the same spans into
// per-route request, error and latency metrics.
package routelatencyprocessor // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/metadata"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/route"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

// DefaultSlowAttribute is the span attribute set on requests slower than their route's threshold.
const DefaultSlowAttribute = semconv.HTTPRouteSlow

// NewFactory returns the routelatency processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		Routes:      route.DefaultConfig(),
		RenameSpans: true,
		Slow:        SlowConfig{Attribute: DefaultSlowAttribute},
	}
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newRouteProcessor(set.TelemetrySettings, set.ID, cfg.(*Config), time.Now)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithShutdown(p.shutdown))
}
