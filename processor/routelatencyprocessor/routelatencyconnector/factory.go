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

// httpLatencyBuckets are the default explicit bounds, for what a Prometheus without native histograms reads with
// histogram_quantile: 10 to 35 % apart from 4 ms to 30 s, coarser below (1 ms steps) and above. Their error
// against exact quantiles is measured by TestQuantileErrorTable and stated in the README.
var httpLatencyBuckets = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond, 5 * time.Millisecond,
	6 * time.Millisecond, 8 * time.Millisecond, 10 * time.Millisecond, 12 * time.Millisecond,
	15 * time.Millisecond, 20 * time.Millisecond, 25 * time.Millisecond, 30 * time.Millisecond,
	40 * time.Millisecond, 50 * time.Millisecond, 60 * time.Millisecond, 80 * time.Millisecond,
	100 * time.Millisecond, 120 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond,
	250 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond,
	600 * time.Millisecond, 700 * time.Millisecond, 800 * time.Millisecond, 900 * time.Millisecond, time.Second,
	1500 * time.Millisecond, 2 * time.Second, 2500 * time.Millisecond, 3 * time.Second, 4 * time.Second,
	5 * time.Second, 7500 * time.Millisecond, 10 * time.Second, 15 * time.Second, 20 * time.Second,
	30 * time.Second, time.Minute,
}

func createDefaultConfig() component.Config {
	return &Config{
		Routes:     route.DefaultConfig(),
		StatusCode: statusCode,
		Histogram: HistogramConfig{
			Type:        histogramExponential,
			Exponential: ExponentialHistogramConfig{MaxSize: 160},
			Explicit:    ExplicitHistogramConfig{Buckets: httpLatencyBuckets},
		},
		Quantiles:              []float64{0.5, 0.9, 0.95, 0.99, 0.999},
		AggregationTemporality: temporalityCumulative,
		FlushInterval:          15 * time.Second,
		SeriesExpiry:           5 * time.Minute,
		MaxSeries:              10000,
		AdjustedCounts:         true,
		CollectorInstanceID:    true,
		MaxDuration:            time.Hour,
		Exemplars:              ExemplarsConfig{MaxPerDataPoint: 3},
		Errors:                 ErrorsConfig{Enabled: true, MaxGroupsPerRoute: 20, MaxGroupsPerService: 200, Mask: DefaultMask},
		Dashboard: DashboardConfig{Slice: 30 * time.Second, History: time.Hour, MaxRoutes: 100, MaxVersions: 5,
			Rollups: []RollupConfig{{Slice: 10 * time.Minute, Keep: 24 * time.Hour}, {Slice: time.Hour, Keep: 7 * 24 * time.Hour}}},
		Breakdown: BreakdownConfig{Enabled: true, Grace: 5 * time.Second, MaxSpans: 10_000, MaxSpansPerTrace: 5_000, NPlusOneThreshold: 5},
	}
}

func createTracesToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Traces, error) {
	return newRouteConnector(set, cfg.(*Config), next, wallClock{})
}
