// Package routelatencyconnector turns HTTP request spans into per-route request counts, error counts and latency
// distributions, with quantile sketches accurate to 1%. Routes are resolved as the routelatency processor does.
package routelatencyconnector // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/route"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadata"
)

// NewFactory returns the routelatency connector factory (traces to metrics).
func NewFactory() connector.Factory {
	return connector.NewFactory(
		metadata.Type,
		createDefaultConfig,
		connector.WithTracesToMetrics(createTracesToMetrics, metadata.TracesToMetricsStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		Routes:     route.DefaultConfig(),
		StatusCode: statusCode,
		Histogram: HistogramConfig{
			Type:        histogramExponential,
			Exponential: ExponentialHistogramConfig{MaxSize: 160},
			Explicit: ExplicitHistogramConfig{Buckets: []time.Duration{
				5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
				75 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
				750 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 7500 * time.Millisecond,
				10 * time.Second,
			}},
		},
		Quantiles:              []float64{0.5, 0.9, 0.95, 0.99, 0.999},
		AggregationTemporality: temporalityCumulative,
		FlushInterval:          15 * time.Second,
		SeriesExpiry:           5 * time.Minute,
		MaxSeries:              10000,
		AdjustedCounts:         true,
		MaxDuration:            time.Hour,
		Exemplars:              ExemplarsConfig{MaxPerDataPoint: 3},
		Dashboard:              DashboardConfig{Slice: 30 * time.Second, History: time.Hour, MaxRoutes: 100},
	}
}

func createTracesToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Traces, error) {
	return newRouteConnector(set, cfg.(*Config), next, time.Now)
}
