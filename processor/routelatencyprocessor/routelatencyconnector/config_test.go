package routelatencyconnector

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/route"
)

// TestLoadConfig loads every key of the connector from testdata/config.yaml and compares whole structs.
func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	full.Routes = route.Config{
		Templates:                  []string{"/users/{user_id}", "/files/{path:path}"},
		OpenAPI:                    []route.OpenAPIDocument{{File: "../internal/route/testdata/fastapi-shop-openapi.json", Service: "shop"}},
		Unmatched:                  route.UnmatchedGuess,
		SpanKinds:                  []string{"SERVER", "CONSUMER"},
		MaxRoutesPerService:        200,
		MaxGuessedRoutesPerService: 50,
		GuessedRouteIdle:           10 * time.Minute,
		MaxServices:                20,
		ServiceIdle:                time.Hour,
		MaxPathLength:              512,
	}
	full.Dimensions = []Dimension{{Name: "tenant", Default: "none"}}
	full.StatusCode = statusCode
	full.HTTPServerRequestDuration = true
	full.Histogram = HistogramConfig{
		Type:        histogramExplicit,
		Exponential: ExponentialHistogramConfig{MaxSize: 80},
		Explicit:    ExplicitHistogramConfig{Buckets: []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second}},
	}
	full.Quantiles = []float64{0.5, 0.99}
	full.AggregationTemporality = temporalityDelta
	full.FlushInterval = 30 * time.Second
	full.SeriesExpiry = 10 * time.Minute
	full.MaxSeries = 500
	full.AdjustedCounts = false
	full.CollectorInstanceID = false
	full.MaxDuration = 5 * time.Minute
	full.Exemplars = ExemplarsConfig{MaxPerDataPoint: 5}
	full.Dashboard = DashboardConfig{Endpoint: "localhost:9999", JaegerUIURL: "http://localhost:16686", BearerToken: "s3cret", Slice: time.Minute, History: 2 * time.Hour, MaxRoutes: 50, MaxVersions: 5, Rollups: createDefaultConfig().(*Config).Dashboard.Rollups,
		Peers: []string{"10.0.0.2:8890", "10.0.0.3:8890"}, PeersDNS: "otelcol-apm-gateway.observability.svc:8890"}

	for _, tc := range []struct {
		id      string
		want    *Config
		invalid []string // keys that Validate must name
	}{
		{id: "routelatency", want: createDefaultConfig().(*Config)},
		{id: "routelatency/full", want: full},
		{id: "routelatency/invalid", invalid: []string{
			"routes.openapi[0].file: testdata/does-not-exist.json", "routes.unmatched", "status_code", "histogram.type",
			"aggregation_temporality", "flush_interval", "max_series", "exemplars.max_per_data_point",
			`dashboard.endpoint: "0.0.0.0:8890" is reachable from other machines`, `dashboard.peers[0]: "replica-b"`,
			`dashboard.peers_dns: "gateways"`,
		}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			sub, err := cm.Sub(tc.id)
			require.NoError(t, err)
			got := createDefaultConfig().(*Config)
			require.NoError(t, sub.Unmarshal(got))
			err = xconfmap.Validate(got)
			if tc.invalid != nil {
				require.Error(t, err)
				for _, key := range tc.invalid {
					assert.Contains(t, err.Error(), key)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	sub, err := cm.Sub("routelatency/unknown_key")
	require.NoError(t, err)
	require.ErrorContains(t, sub.Unmarshal(createDefaultConfig().(*Config)), "flush_intervals")
}
