package routelatencyconnector // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector"

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/dashboard"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/route"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

// Config is the routelatency connector's configuration.
type Config struct {
	// Routes is the route resolution shared with the routelatency processor.
	Routes route.Config `mapstructure:"routes"`
	// Dimensions are extra span (then resource) attributes to split series by.
	Dimensions []Dimension `mapstructure:"dimensions"`
	// StatusCode is "code" (http.response.status_code=404) or "class" (http.response.status_class=4xx).
	StatusCode string `mapstructure:"status_code"`
	// Histogram chooses the exported latency distribution.
	Histogram HistogramConfig `mapstructure:"histogram"`
	// Quantiles are read from each series' sketch (1% relative error) and emitted as a summary; empty emits none.
	Quantiles []float64 `mapstructure:"quantiles"`
	// AggregationTemporality is "cumulative" or "delta" (what Datadog wants).
	AggregationTemporality string `mapstructure:"aggregation_temporality"`
	// FlushInterval is how often metrics are emitted.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// SeriesExpiry drops series that received nothing for this long.
	SeriesExpiry time.Duration `mapstructure:"series_expiry"`
	// MaxSeries caps the series held; requests beyond it go to one series marked otel.metric.overflow=true.
	MaxSeries int `mapstructure:"max_series"`
	// HTTPServerRequestDuration also emits the semantic conventions' http.server.request.duration (a histogram in
	// seconds with http.request.method, http.route, http.response.status_code and error.type), which dashboards
	// made for SDK-instrumented services read. Off by default: an app that emits it itself would be counted twice.
	HTTPServerRequestDuration bool `mapstructure:"http_server_request_duration"`
	// CollectorInstanceID writes the gateway's own service.instance.id on every data point as collector.instance.id,
	// so that replicas exporting cumulative series never collide. Delta series (Datadog) add up without it.
	CollectorInstanceID bool `mapstructure:"collector_instance_id"`
	// AdjustedCounts counts a span sampled with an OpenTelemetry probability threshold (`ot=th:` in its tracestate)
	// as the 1/p requests it stands for, in requests, errors, histogram and quantiles.
	AdjustedCounts bool `mapstructure:"adjusted_counts"`
	// MaxDuration is the longest request duration taken for real; longer spans are counted as invalid.
	MaxDuration time.Duration `mapstructure:"max_duration"`
	// Exemplars attaches the trace and span ids of the slowest requests of each interval to the histogram.
	Exemplars ExemplarsConfig `mapstructure:"exemplars"`
	// Dashboard serves a read-only route page and JSON API when its endpoint is set.
	Dashboard DashboardConfig `mapstructure:"dashboard"`
	// Breakdown splits each request's time among its descendant spans in the same service (database, downstream
	// calls, the team's own spans, its own time), for the metrics and the dashboard's route page.
	Breakdown BreakdownConfig `mapstructure:"breakdown"`
	// Errors groups the exceptions of each route's requests (and of their descendants, through the breakdown's join).
	Errors ErrorsConfig `mapstructure:"errors"`
	// SLOs are service level objectives: each request a matching route serves is counted good or bad
	// (slo.events), and `slo-rules` writes the burn-rate alerts and Datadog definitions from the same list.
	SLOs []slo.Objective `mapstructure:"slos"`
	_    struct{}
}

// BreakdownConfig sets up the join of requests with their descendants. Spans pass through unchanged and
// undelayed: only small per-span records wait (about 300 bytes each, bookkeeping included), at most max_spans.
type BreakdownConfig struct {
	// Enabled turns the breakdown on: http.server.route.breakdown.* metrics, and the route page's breakdown when the
	// dashboard is on.
	Enabled bool `mapstructure:"enabled"`
	// Grace is how long a request waits, after its span arrived, for descendants that come in later batches.
	Grace time.Duration `mapstructure:"grace"`
	// MaxSpans bounds the descendant records held over all traces; MaxSpansPerTrace one trace's (per service).
	MaxSpans         int `mapstructure:"max_spans"`
	MaxSpansPerTrace int `mapstructure:"max_spans_per_trace"`
	// NPlusOneThreshold flags a request that ran one database statement at least this many times.
	NPlusOneThreshold int `mapstructure:"n_plus_one_threshold"`
}

// ErrorsConfig sets up the error groups per route.
type ErrorsConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// MaxGroupsPerRoute and MaxGroupsPerService bound the groups, {other} included.
	MaxGroupsPerRoute   int `mapstructure:"max_groups_per_route"`
	MaxGroupsPerService int `mapstructure:"max_groups_per_service"`
	// Mask are regular expressions whose matches are replaced by <masked> in messages, stack traces and
	// fingerprints before anything is kept, shown or counted.
	Mask []string `mapstructure:"mask"`
}

// DefaultMask masks emails, bearer tokens, JWTs and card-like numbers.
var DefaultMask = []string{
	`[\w.+-]+@[\w-]+\.[\w.-]+`,
	`(?i)bearer\s+[\w.~+/=-]+`,
	`eyJ[\w-]+\.[\w-]+\.[\w-]+`,
	`\b\d(?:[ -]?\d){12,18}\b`,
}

func (e *ErrorsConfig) validate() error {
	if !e.Enabled {
		return nil
	}
	var errs []error
	if e.MaxGroupsPerRoute < 2 {
		errs = append(errs, fmt.Errorf("errors.max_groups_per_route: must be at least 2 (a group and {other}), got %d", e.MaxGroupsPerRoute))
	}
	if e.MaxGroupsPerService < e.MaxGroupsPerRoute {
		errs = append(errs, fmt.Errorf("errors.max_groups_per_service: must be at least max_groups_per_route (%d), got %d", e.MaxGroupsPerRoute, e.MaxGroupsPerService))
	}
	for i, p := range e.Mask {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, fmt.Errorf("errors.mask[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// DashboardConfig sets up the built-in route dashboard. Its history holds at most
// max_routes x (history / slice) sketches of at most 8 KiB each.
type DashboardConfig struct {
	// Endpoint is the listen address, e.g. localhost:8890; empty serves nothing.
	Endpoint string `mapstructure:"endpoint"`
	// JaegerUIURL is the Jaeger UI's base URL; when set each route links to its traces slower than its p99.
	JaegerUIURL string `mapstructure:"jaeger_ui_url"`
	// BearerToken, when set, is required in an "Authorization: Bearer" header.
	BearerToken configopaque.String `mapstructure:"bearer_token"`
	// Slice is the width of one history slice; windows are whole slices.
	Slice time.Duration `mapstructure:"slice"`
	// History is how far back the slices go.
	History time.Duration `mapstructure:"history"`
	// Storage names a storage extension (file_storage, checked_file_storage) that keeps the history across
	// restarts; empty keeps it in memory only. Unused without an endpoint (no history is kept).
	Storage *component.ID `mapstructure:"storage"`
	// Rollups are coarser slices kept longer, each a whole number of the previous ones: the page's windows up to
	// the last one's keep.
	Rollups []RollupConfig `mapstructure:"rollups"`
	// MaxRoutes bounds the routes the dashboard keeps history for.
	MaxRoutes int `mapstructure:"max_routes"`
	// MaxVersions bounds the versions (service.version) kept apart per service; older ones are folded together.
	MaxVersions int `mapstructure:"max_versions"`
	// Peers are the other gateway replicas' dashboards (host:port), for the fleet view (?scope=fleet): their
	// routes' sketches are merged with this replica's. PeersDNS ("name:port", e.g. a Kubernetes headless Service)
	// is looked up on each fleet request instead of, or besides, a fixed list.
	Peers    []string `mapstructure:"peers"`
	PeersDNS string   `mapstructure:"peers_dns"`
}

// RollupConfig is one coarser tier of the dashboard's history.
type RollupConfig struct {
	Slice time.Duration `mapstructure:"slice"`
	Keep  time.Duration `mapstructure:"keep"`
}

// tiers are the history's resolutions, finest first.
func (d *DashboardConfig) tiers() []dashboard.Tier {
	out := []dashboard.Tier{{Slice: d.Slice, Keep: d.History}}
	for _, r := range d.Rollups {
		out = append(out, dashboard.Tier{Slice: r.Slice, Keep: r.Keep})
	}
	return out
}

// Dimension is an extra attribute to split series by; Default fills it in when a span lacks it.
type Dimension struct {
	Name    string `mapstructure:"name"`
	Default string `mapstructure:"default"`
}

// HistogramConfig chooses between exponential (default, mergeable across replicas) and explicit buckets.
type HistogramConfig struct {
	// Type is "exponential" or "explicit".
	Type        string                     `mapstructure:"type"`
	Exponential ExponentialHistogramConfig `mapstructure:"exponential"`
	Explicit    ExplicitHistogramConfig    `mapstructure:"explicit"`
}

// ExponentialHistogramConfig sets the bucket count; the scale adapts to the observed range.
type ExponentialHistogramConfig struct {
	MaxSize int32 `mapstructure:"max_size"`
}

// ExplicitHistogramConfig lists the bucket bounds.
type ExplicitHistogramConfig struct {
	Buckets []time.Duration `mapstructure:"buckets"`
}

// ExemplarsConfig bounds the exemplars kept per series and interval.
type ExemplarsConfig struct {
	MaxPerDataPoint int `mapstructure:"max_per_data_point"`
}

const (
	histogramExponential  = "exponential"
	histogramExplicit     = "explicit"
	temporalityCumulative = "cumulative"
	temporalityDelta      = "delta"
	statusCode            = "code"
	statusClass           = "class"
)

var _ component.Config = (*Config)(nil)

// Validate names the key at fault.
func (c *Config) Validate() error {
	errs := []error{c.Routes.Validate()}
	seen := map[string]bool{}
	for i, d := range c.Dimensions {
		switch {
		case d.Name == "":
			errs = append(errs, fmt.Errorf("dimensions[%d].name: must not be empty", i))
		case seen[d.Name]:
			errs = append(errs, fmt.Errorf("dimensions[%d].name: %q is listed twice", i, d.Name))
		case slices.Contains(reservedDimensions, d.Name):
			errs = append(errs, fmt.Errorf("dimensions[%d].name: %q is always a dimension", i, d.Name))
		}
		seen[d.Name] = true
	}
	if c.StatusCode != statusCode && c.StatusCode != statusClass {
		errs = append(errs, fmt.Errorf("status_code: must be %q or %q, got %q", statusCode, statusClass, c.StatusCode))
	}
	switch c.Histogram.Type {
	case histogramExponential:
		if c.Histogram.Exponential.MaxSize < 4 || c.Histogram.Exponential.MaxSize > 16384 {
			errs = append(errs, fmt.Errorf("histogram.exponential.max_size: must be between 4 and 16384, got %d", c.Histogram.Exponential.MaxSize))
		}
	case histogramExplicit:
		b := c.Histogram.Explicit.Buckets
		if len(b) == 0 {
			errs = append(errs, errors.New("histogram.explicit.buckets: must list at least one bound"))
		}
		for i := range b {
			if b[i] <= 0 || (i > 0 && b[i] <= b[i-1]) {
				errs = append(errs, fmt.Errorf("histogram.explicit.buckets[%d]: bounds must be positive and ascending, got %s", i, b[i]))
				break
			}
		}
	default:
		errs = append(errs, fmt.Errorf("histogram.type: must be %q or %q, got %q", histogramExponential, histogramExplicit, c.Histogram.Type))
	}
	for i, q := range c.Quantiles {
		if !(q > 0 && q < 1) {
			errs = append(errs, fmt.Errorf("quantiles[%d]: must be between 0 and 1 (exclusive), got %v", i, q))
		}
	}
	if c.HTTPServerRequestDuration && c.StatusCode != statusCode {
		errs = append(errs, fmt.Errorf("http_server_request_duration: needs status_code %q (the metric carries http.response.status_code), got %q", statusCode, c.StatusCode))
	}
	if c.AggregationTemporality != temporalityCumulative && c.AggregationTemporality != temporalityDelta {
		errs = append(errs, fmt.Errorf("aggregation_temporality: must be %q or %q, got %q", temporalityCumulative, temporalityDelta, c.AggregationTemporality))
	}
	if c.FlushInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("flush_interval: must be at least 100ms, got %s", c.FlushInterval))
	}
	if c.SeriesExpiry < c.FlushInterval {
		errs = append(errs, fmt.Errorf("series_expiry: must be at least flush_interval (%s), got %s", c.FlushInterval, c.SeriesExpiry))
	}
	if c.MaxSeries < 1 {
		errs = append(errs, fmt.Errorf("max_series: must be at least 1, got %d", c.MaxSeries))
	}
	if c.MaxDuration <= 0 {
		errs = append(errs, fmt.Errorf("max_duration: must be positive, got %s", c.MaxDuration))
	}
	if c.Exemplars.MaxPerDataPoint < 0 || c.Exemplars.MaxPerDataPoint > 100 {
		errs = append(errs, fmt.Errorf("exemplars.max_per_data_point: must be between 0 and 100, got %d", c.Exemplars.MaxPerDataPoint))
	}
	errs = append(errs, c.Dashboard.validate(), c.Breakdown.validate(), c.Errors.validate(), slo.Validate("slos", c.SLOs))
	return errors.Join(errs...)
}

func (b *BreakdownConfig) validate() error {
	if !b.Enabled {
		return nil
	}
	var errs []error
	if b.Grace < 100*time.Millisecond || b.Grace > 5*time.Minute {
		errs = append(errs, fmt.Errorf("breakdown.grace: must be between 100ms and 5m, got %s", b.Grace))
	}
	if b.MaxSpans < 1 {
		errs = append(errs, fmt.Errorf("breakdown.max_spans: must be at least 1, got %d", b.MaxSpans))
	}
	if b.MaxSpansPerTrace < 1 || b.MaxSpansPerTrace > b.MaxSpans {
		errs = append(errs, fmt.Errorf("breakdown.max_spans_per_trace: must be between 1 and max_spans (%d), got %d", b.MaxSpans, b.MaxSpansPerTrace))
	}
	if b.NPlusOneThreshold < 2 {
		errs = append(errs, fmt.Errorf("breakdown.n_plus_one_threshold: must be at least 2, got %d", b.NPlusOneThreshold))
	}
	return errors.Join(errs...)
}

func (d *DashboardConfig) validate() error {
	if d.Endpoint == "" {
		return nil
	}
	var errs []error
	if d.Slice < time.Second {
		errs = append(errs, fmt.Errorf("dashboard.slice: must be at least 1s, got %s", d.Slice))
	} else if d.History < d.Slice || d.History/d.Slice > 1440 {
		errs = append(errs, fmt.Errorf("dashboard.history: must hold between 1 and 1440 slices of %s, got %s", d.Slice, d.History))
	}
	prev := dashboard.Tier{Slice: d.Slice, Keep: d.History}
	for i, r := range d.Rollups {
		at := fmt.Sprintf("dashboard.rollups[%d]", i)
		switch {
		case r.Slice <= prev.Slice || prev.Slice <= 0 || r.Slice%prev.Slice != 0:
			errs = append(errs, fmt.Errorf("%s.slice: must be a multiple of the finer slice (%s), got %s", at, prev.Slice, r.Slice))
		case r.Keep <= prev.Keep || r.Keep%r.Slice != 0 || r.Keep/r.Slice > 1440:
			errs = append(errs, fmt.Errorf("%s.keep: must be longer than the finer tier's (%s) and hold at most 1440 whole slices of %s, got %s", at, prev.Keep, r.Slice, r.Keep))
		}
		prev = dashboard.Tier{Slice: r.Slice, Keep: r.Keep}
	}
	if d.MaxVersions < 2 {
		errs = append(errs, fmt.Errorf("dashboard.max_versions: must be at least 2 (a version and the one before), got %d", d.MaxVersions))
	}
	if d.MaxRoutes < 1 {
		errs = append(errs, fmt.Errorf("dashboard.max_routes: must be at least 1, got %d", d.MaxRoutes))
	}
	for i, p := range d.Peers {
		if _, port, err := net.SplitHostPort(p); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("dashboard.peers[%d]: %q is not host:port", i, p))
		}
	}
	if _, port, err := net.SplitHostPort(d.PeersDNS); d.PeersDNS != "" && (err != nil || port == "") {
		errs = append(errs, fmt.Errorf("dashboard.peers_dns: %q is not name:port", d.PeersDNS))
	}
	if !loopback(d.Endpoint) && d.BearerToken == "" {
		errs = append(errs, fmt.Errorf("dashboard.endpoint: %q is reachable from other machines; set dashboard.bearer_token (DASHBOARD_BEARER_TOKEN in config.yaml), or listen on localhost", d.Endpoint))
	}
	if d.JaegerUIURL != "" {
		if u, err := url.Parse(d.JaegerUIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("dashboard.jaeger_ui_url: %q is not an http(s) URL", d.JaegerUIURL))
		}
	}
	return errors.Join(errs...)
}

// reservedDimensions are written on every series already.
var reservedDimensions = []string{semconv.ServiceName, semconv.DeploymentEnvironmentName, semconv.HTTPRequestMethod, semconv.HTTPRoute, semconv.HTTPResponseStatusCode, semconv.HTTPResponseStatusClass}

// loopback reports an endpoint only this machine reaches: localhost or a loopback address.
func loopback(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
