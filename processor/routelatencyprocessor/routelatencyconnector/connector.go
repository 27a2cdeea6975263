package routelatencyconnector // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector"

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/adjustedcount"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/aggregate"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/breakdown"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/dashboard"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/errorgroups"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/route"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadata"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

const scopeName = "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector"

// clock is the connector's time: Now stamps intervals and ages routes, Ticks paces the flushes. Tests drive both.
type clock interface {
	Now() time.Time
	Ticks(every time.Duration) (ticks <-chan time.Time, stop func())
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Ticks(every time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(every)
	return t.C, t.Stop
}

type routeConnector struct {
	cfg       *Config
	logger    *zap.Logger
	next      consumer.Metrics
	resolver  *route.Resolver
	telemetry *metadata.TelemetryBuilder
	clock     clock

	store *aggregate.Store

	// history and dashboard exist when dashboard.endpoint is set; breakdowns unless breakdown.enabled is off.
	history    *dashboard.History
	versions   *dashboard.Versions
	dashboard  *dashboard.Server
	breakdowns *breakdownShards
	// slos counts requests against the objectives; nil without any.
	slos *slo.Counts
	// errors groups what fails per route; nil with errors off.
	errors *errorgroups.Groups
	// id is the connector's own, historyStore the client of dashboard.storage (nil without); instanceID the
	// collector's service.instance.id when collector_instance_id is on.
	id           component.ID
	instanceID   string
	historyStore storage.Client
	// reasonLate, reasonOrphan and reasonBound label the breakdown's unjoined spans; outcome* the exceptions.
	reasonLate, reasonOrphan, reasonBound            metric.AddOption
	outcomeRecorded, outcomeFolded, outcomeTruncated metric.AddOption
	// triggerGrace and triggerBound label the recorded breakdowns.
	triggerGrace, triggerBound metric.AddOption

	stop     chan struct{}
	done     chan struct{}
	shutdown sync.Once
	// shutdownErr is what the first Shutdown returned, returned again by later calls.
	shutdownErr error
}

// newRouteConnector takes the clock that stamps intervals, ages routes and paces flushes (wallClock outside tests).
func newRouteConnector(set connector.Settings, cfg *Config, next consumer.Metrics, clk clock) (*routeConnector, error) {
	resolver, err := route.NewResolver(cfg.Routes)
	if err != nil {
		return nil, err
	}
	c := &routeConnector{
		cfg:              cfg,
		id:               set.ID,
		logger:           set.Logger,
		next:             next,
		resolver:         resolver,
		clock:            clk,
		reasonLate:       metric.WithAttributes(attribute.String("reason", "late")),
		reasonOrphan:     metric.WithAttributes(attribute.String("reason", "orphan")),
		reasonBound:      metric.WithAttributes(attribute.String("reason", "bound")),
		outcomeRecorded:  metric.WithAttributes(attribute.String("outcome", "recorded")),
		outcomeFolded:    metric.WithAttributes(attribute.String("outcome", "folded")),
		outcomeTruncated: metric.WithAttributes(attribute.String("outcome", "truncated")),
		triggerGrace:     metric.WithAttributes(attribute.String("trigger", "grace")),
		triggerBound:     metric.WithAttributes(attribute.String("trigger", "bound")),
	}
	sc := storeConfig(cfg)
	if cfg.CollectorInstanceID {
		sc.CollectorInstanceID = stringAttr(set.Resource.Attributes(), semconv.ServiceInstanceID)
		c.instanceID = sc.CollectorInstanceID
	}
	c.store = aggregate.NewStore(sc, pcommon.NewTimestampFromTime(c.clock.Now()))
	objectives := make([]slo.Objective, len(cfg.SLOs))
	for i, o := range cfg.SLOs {
		objectives[i] = o.WithDefaults()
	}
	if len(objectives) > 0 {
		c.slos = slo.NewCounts(objectives, slo.Options{MaxRoutes: cfg.MaxSeries, Delta: sc.Delta, InstanceID: sc.CollectorInstanceID, ScopeName: scopeName},
			pcommon.NewTimestampFromTime(c.clock.Now()))
	}
	if cfg.Errors.Enabled {
		masker, err := errorgroups.NewMasker(cfg.Errors.Mask)
		if err != nil {
			return nil, err
		}
		c.errors = errorgroups.New(errorgroups.Limits{PerRoute: cfg.Errors.MaxGroupsPerRoute, PerService: cfg.Errors.MaxGroupsPerService},
			masker, pcommon.NewTimestampFromTime(c.clock.Now()))
	}
	if d := cfg.Dashboard; d.Endpoint != "" {
		c.history = dashboard.NewHistory(d.tiers(), d.MaxRoutes)
		c.versions = dashboard.NewVersions(d.MaxVersions)
		var peers *dashboard.Peers
		if len(d.Peers) > 0 || d.PeersDNS != "" {
			peers = dashboard.NewPeers(d.Peers, d.PeersDNS, string(d.BearerToken))
		}
		instance := stringAttr(set.Resource.Attributes(), semconv.ServiceInstanceID)
		c.dashboard = dashboard.NewServer(c.history, dashboard.Options{
			JaegerUI: d.JaegerUIURL, BearerToken: string(d.BearerToken), Routes: resolver, Instance: instance, Peers: peers,
			FlushInterval: cfg.FlushInterval, Now: clk.Now, Objectives: objectives, Versions: c.versions, Errors: c.errors,
		})
	}
	if cfg.Breakdown.Enabled {
		c.breakdowns = newBreakdownShards(cfg.Breakdown, sc, c.store.ShardCount(), c.clock.Now(), c.errors)
	}
	if c.telemetry, err = metadata.NewTelemetryBuilder(set.TelemetrySettings); err != nil {
		return nil, err
	}
	// The gateway runs two routelatency connectors (local and Datadog); without a label their gauges would
	// overwrite each other in the collector's exposition.
	componentID := metric.WithAttributes(attribute.String("otelcol.component.id", set.ID.String()))
	err = c.telemetry.RegisterConnectorRoutelatencySeriesCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(int64(c.store.Len()), componentID)
		return nil
	})
	if err == nil && c.breakdowns != nil {
		err = c.telemetry.RegisterConnectorRoutelatencyBreakdownRecordsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(c.breakdowns.Held(), componentID)
			return nil
		})
	}
	return c, err
}

func storeConfig(cfg *Config) aggregate.Config {
	sc := aggregate.Config{
		Delta:           cfg.AggregationTemporality == temporalityDelta,
		StatusClass:     cfg.StatusCode == statusClass,
		Quantiles:       cfg.Quantiles,
		MaxSeries:       cfg.MaxSeries,
		Expiry:          cfg.SeriesExpiry,
		MaxExemplars:    cfg.Exemplars.MaxPerDataPoint,
		ScopeName:       scopeName,
		RequestDuration: cfg.HTTPServerRequestDuration,
	}
	if cfg.Histogram.Type == histogramExponential {
		sc.ExponentialMaxSize = cfg.Histogram.Exponential.MaxSize
	} else {
		// Each latency objective's threshold is a bound too, so that the histogram answers "how many were under it"
		// exactly, as the objective counts.
		bounds := slices.Clone(cfg.Histogram.Explicit.Buckets)
		for _, o := range cfg.SLOs {
			if o.Indicator == slo.Latency && o.Threshold > 0 {
				bounds = append(bounds, o.Threshold)
			}
		}
		slices.Sort(bounds)
		for _, b := range slices.Compact(bounds) {
			sc.ExplicitBounds = append(sc.ExplicitBounds, b.Seconds())
		}
	}
	for _, d := range cfg.Dimensions {
		sc.DimensionNames = append(sc.DimensionNames, d.Name)
	}
	return sc
}

func (c *routeConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (c *routeConnector) Start(ctx context.Context, host component.Host) error {
	if c.dashboard != nil && c.cfg.Dashboard.Storage != nil {
		if err := c.openHistory(ctx, host); err != nil {
			return err
		}
	}
	if c.dashboard != nil {
		if err := c.dashboard.Start(c.cfg.Dashboard.Endpoint); err != nil {
			return err
		}
		c.logger.Info("Route dashboard listening", zap.String("endpoint", c.cfg.Dashboard.Endpoint))
	}
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.flushLoop()
	return nil
}

// Shutdown flushes once more, so that what was accepted before a stop is emitted. It is safe to call twice (the
// collector may, after a failed start) and returns every error it met.
func (c *routeConnector) Shutdown(ctx context.Context) error {
	c.shutdown.Do(func() {
		var errs []error
		if c.stop != nil {
			close(c.stop)
			<-c.done
			errs = append(errs, c.flush(ctx))
		}
		if c.dashboard != nil {
			errs = append(errs, c.dashboard.Shutdown(ctx))
		}
		if c.historyStore != nil {
			errs = append(errs, c.historyStore.Close(ctx))
		}
		c.telemetry.Shutdown()
		c.shutdownErr = errors.Join(errs...)
	})
	return c.shutdownErr
}

func (c *routeConnector) flushLoop() {
	defer close(c.done)
	ticks, stop := c.clock.Ticks(c.cfg.FlushInterval)
	defer stop()
	for {
		select {
		case <-c.stop:
			return
		case <-ticks:
			if err := c.flush(context.Background()); err != nil {
				c.logger.Warn("Flush incomplete: route metrics refused or the dashboard history not written", zap.Error(err))
			}
		}
	}
}

// flush emits one interval; an error names how many data points the next consumer refused.
func (c *routeConnector) flush(ctx context.Context) error {
	now := c.clock.Now()
	md := c.store.Flush(pcommon.NewTimestampFromTime(now), c.recordHistory(now))
	if c.slos != nil {
		for _, snap := range c.slos.Flush(md, pcommon.NewTimestampFromTime(now)) {
			if c.history != nil {
				r := snap.Route
				c.history.RecordSLO(dashboard.RouteKey{Service: r.Service, Environment: r.Environment, Method: r.Method, Route: r.Route},
					c.slos.Objectives()[snap.Objective].Name, snap.Outcome, now)
			}
		}
	}
	if c.breakdowns != nil {
		c.recordBreakdowns(ctx, now)
		c.breakdowns.metrics.Flush(pcommon.NewTimestampFromTime(now), nil).ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	}
	if c.errors != nil {
		c.errors.WriteMetrics(md, scopeName, c.cfg.AggregationTemporality == temporalityDelta, c.instanceID, pcommon.NewTimestampFromTime(now))
		counts := c.errors.Drain()
		c.telemetry.ConnectorRoutelatencyExceptions.Add(ctx, counts.Recorded, c.outcomeRecorded)
		c.telemetry.ConnectorRoutelatencyExceptions.Add(ctx, counts.Folded, c.outcomeFolded)
		c.telemetry.ConnectorRoutelatencyExceptions.Add(ctx, counts.Truncated, c.outcomeTruncated)
	}
	// The history is persisted at every flush: a kill -9 loses at most one flush interval of the page.
	persistErr := c.persistHistory(ctx)
	if md.DataPointCount() == 0 {
		return persistErr
	}
	if err := c.next.ConsumeMetrics(ctx, md); err != nil {
		return errors.Join(fmt.Errorf("%d route metric data points refused: %w", md.DataPointCount(), err), persistErr)
	}
	return persistErr
}

// recordHistory hands each flushed interval to the dashboard's history, or is nil without a dashboard.
func (c *routeConnector) recordHistory(now time.Time) func(*aggregate.Series) {
	if c.history == nil {
		return nil
	}
	return func(s *aggregate.Series) {
		key := dashboard.RouteKey{Service: s.Attrs.Service, Environment: s.Attrs.Environment, Method: s.Attrs.Method, Route: s.Attrs.Route}
		iv := dashboard.Interval{Sketch: s.Sketch, Errors: s.IntervalErrors, SumSeconds: s.IntervalSumSeconds, StatusCode: s.Attrs.StatusCode}
		s.Exemplars(func(traceID pcommon.TraceID, spanID pcommon.SpanID, seconds float64, at pcommon.Timestamp) {
			iv.Exemplars = append(iv.Exemplars, dashboard.Exemplar{TraceID: traceID.String(), SpanID: spanID.String(), Seconds: seconds, At: at.AsTime()})
		})
		c.history.Record(key, iv, now)
	}
}

// recordBreakdowns hands the requests recorded since the last flush to the history, and counts what the join did.
func (c *routeConnector) recordBreakdowns(ctx context.Context, now time.Time) {
	totals, counts := c.breakdowns.drain(now)
	if c.history != nil {
		for key, t := range totals {
			c.history.RecordBreakdown(dashboard.RouteKey(key), t, now)
		}
	}
	c.telemetry.ConnectorRoutelatencyBreakdownRequests.Add(ctx, counts.Recorded-counts.Early, c.triggerGrace)
	c.telemetry.ConnectorRoutelatencyBreakdownRequests.Add(ctx, counts.Early, c.triggerBound)
	c.telemetry.ConnectorRoutelatencyBreakdownCycles.Add(ctx, counts.Cycles)
	c.telemetry.ConnectorRoutelatencyBreakdownUnjoinedSpans.Add(ctx, counts.Late, c.reasonLate)
	c.telemetry.ConnectorRoutelatencyBreakdownUnjoinedSpans.Add(ctx, counts.Orphans, c.reasonOrphan)
	c.telemetry.ConnectorRoutelatencyBreakdownUnjoinedSpans.Add(ctx, counts.Dropped, c.reasonBound)
}

func (c *routeConnector) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	var requests, unrouted, invalid, overflow, undocumented, malformed int64
	arrival := c.clock.Now()
	now := pcommon.NewTimestampFromTime(arrival)
	// The store copies what it keeps: attrs may point into span memory.
	attrs := aggregate.Attributes{}
	if len(c.cfg.Dimensions) > 0 {
		attrs.Dimensions = make([]string, len(c.cfg.Dimensions))
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		resAttrs := rs.Resource().Attributes()
		attrs.Service = stringAttr(resAttrs, aggregate.AttrService)
		attrs.Environment = stringAttr(resAttrs, aggregate.AttrEnvironment)
		if attrs.Environment == "" {
			attrs.Environment = stringAttr(resAttrs, semconv.DeploymentEnvironment)
		}
		version := ""
		if c.versions != nil || c.errors != nil {
			version = stringAttr(resAttrs, semconv.ServiceVersion)
		}
		shardIndex := c.store.ShardIndex(attrs.Service)
		shard := c.store.Shard(shardIndex)
		shard.Lock()
		var bd *breakdowns
		if c.breakdowns != nil {
			bd = c.breakdowns.shards[shardIndex]
		}
		var service, environment, bdVersion string
		var serviceID uint32
		if bd != nil {
			bd.mu.Lock()
			bd.sweepIfDue(arrival)
			c.breakdowns.makeRoom(shardIndex, arrival, rs)
			service, serviceID = bd.own(attrs.Service)
			environment, _ = bd.own(attrs.Environment)
			bdVersion, _ = bd.own(version)
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				if !c.resolver.IsRequest(span) {
					switch {
					case bd == nil:
					case bd.store.Full():
						bd.store.DropSpan(span.TraceID(), serviceID) // at the bound: not worth reading
					default:
						bd.store.AddSpan(span.TraceID(), serviceID, bd.reader.Read(span), arrival)
						if c.errors != nil && span.Events().Len() > 0 {
							if ex := breakdown.ReadExceptions(span, breakdown.MaxExceptionsPerSpan, breakdown.MaxExceptionLength); len(ex) > 0 {
								bd.store.AddExceptions(span.TraceID(), serviceID, breakdown.ID(span.SpanID()), ex, arrival)
							}
						}
					}
					continue
				}
				req := route.ReadRequest(span)
				res := c.resolver.Resolve(attrs.Service, &req, arrival)
				if res.Source == route.SourceNone {
					unrouted++
					continue
				}
				seconds, ok := c.duration(span)
				if !ok {
					invalid++
					continue
				}
				count := uint64(1)
				if ts := span.TraceState().AsRaw(); ts != "" && c.cfg.AdjustedCounts {
					var status adjustedcount.Status
					count, status = adjustedcount.Of(ts, uniform(span.SpanID()))
					if status == adjustedcount.Malformed {
						malformed++
					}
				}
				requests++
				if res.Source == route.SourceOverflow {
					overflow++
				}
				if res.Undocumented {
					undocumented++
				}
				attrs.Route = res.Route
				attrs.Method = req.Method
				attrs.StatusCode = req.StatusCode
				for d := range c.cfg.Dimensions {
					attrs.Dimensions[d] = dimensionValue(span.Attributes(), resAttrs, &c.cfg.Dimensions[d])
				}
				isError := span.Status().Code() == ptrace.StatusCodeError || attrs.StatusCode >= 500
				if shard.Record(&attrs, seconds, count, isError, span.TraceID(), span.SpanID(), span.EndTimestamp(), now) && res.Source != route.SourceOverflow {
					overflow++
				}
				unexplained := ""
				if c.errors != nil {
					unexplained = c.recordExceptions(span, errorgroups.RouteKey{Service: attrs.Service, Environment: attrs.Environment, Method: req.Method, Route: res.Route},
						version, isError, attrs.StatusCode, count, arrival, bd != nil)
					if unexplained != "" {
						unexplained, _ = bd.own(unexplained) // kept by the join: an owned copy, one per distinct message
					}
				}
				if c.versions != nil {
					c.versions.Record(dashboard.ServiceKey{Service: attrs.Service, Environment: attrs.Environment}, version,
						dashboard.MethodRoute{Method: req.Method, Route: res.Route}, seconds, isError, count, arrival)
				}
				if c.slos != nil {
					c.slos.Record(slo.Route{Service: attrs.Service, Environment: attrs.Environment, Method: req.Method, Route: res.Route},
						int64(span.EndTimestamp())-int64(span.StartTimestamp()), attrs.StatusCode, isError, count)
				}
				if bd != nil {
					bd.store.AddRequest(breakdown.Request{
						Key:       breakdown.Key{Service: service, Environment: environment, Method: req.Method, Route: res.Route},
						ServiceID: serviceID, TraceID: span.TraceID(), Count: count, Failed: isError, Version: bdVersion, Unexplained: unexplained,
						Span: breakdown.RequestSpan{ID: breakdown.ID(span.SpanID()), Start: int64(span.StartTimestamp()), End: int64(span.EndTimestamp())},
					}, arrival)
				}
			}
		}
		if bd != nil {
			bd.mu.Unlock()
		}
		shard.Unlock()
	}
	c.telemetry.ConnectorRoutelatencyRequestSpans.Add(ctx, requests)
	c.telemetry.ConnectorRoutelatencyUnroutedSpans.Add(ctx, unrouted)
	c.telemetry.ConnectorRoutelatencyInvalidSpans.Add(ctx, invalid)
	c.telemetry.ConnectorRoutelatencyOverflowSpans.Add(ctx, overflow)
	c.telemetry.ConnectorRoutelatencyUndocumentedSpans.Add(ctx, undocumented)
	c.telemetry.ConnectorRoutelatencyMalformedThresholdSpans.Add(ctx, malformed)
	return nil
}

// uniform maps the span id to [0, 1): random, and independent of the trace id that the sampling decision used.
func uniform(id pcommon.SpanID) float64 {
	if id.IsEmpty() {
		return rand.Float64()
	}
	return float64(binary.BigEndian.Uint64(id[:])>>11) / (1 << 53)
}

// duration returns the span's duration in seconds, or false when a timestamp is missing, the end precedes the start
// or the duration exceeds max_duration.
func (c *routeConnector) duration(span ptrace.Span) (float64, bool) {
	start, end := span.StartTimestamp(), span.EndTimestamp()
	if start == 0 || end == 0 || end < start {
		return 0, false
	}
	d := time.Duration(end - start)
	if d > c.cfg.MaxDuration || d < 0 {
		return 0, false
	}
	s := d.Seconds()
	return s, !math.IsNaN(s) && !math.IsInf(s, 0)
}

func stringAttr(attrs pcommon.Map, key string) string {
	if v, ok := attrs.Get(key); ok {
		return v.Str()
	}
	return ""
}

func dimensionValue(spanAttrs, resAttrs pcommon.Map, d *Dimension) string {
	v, ok := spanAttrs.Get(d.Name)
	if !ok {
		v, ok = resAttrs.Get(d.Name)
	}
	if !ok {
		return d.Default
	}
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return v.AsString()
}

// recordExceptions groups a request span's exception events. A request that failed without one is grouped as an
// error status, at once without the breakdown; with it, the message is returned, for the join to group it unless a
// descendant's exception explains the failure.
func (c *routeConnector) recordExceptions(span ptrace.Span, route errorgroups.RouteKey, version string, failed bool, status int64, count uint64, at time.Time, joined bool) (unexplained string) {
	var exceptions []breakdown.Exception
	if span.Events().Len() > 0 {
		exceptions = breakdown.ReadExceptions(span, breakdown.MaxExceptionsPerSpan, breakdown.MaxExceptionLength)
	}
	if len(exceptions) == 0 {
		if !failed {
			return ""
		}
		message := span.Status().Message()
		if message == "" {
			message = statusMessage(status)
		}
		message = errorgroups.Clean(message, errorgroups.MaxMessageLength) // no copy unless cut or not UTF-8
		if joined {
			return message
		}
		exceptions = []breakdown.Exception{{Type: errorgroups.StatusError, Message: message}}
	}
	for _, e := range exceptions {
		c.errors.Record(route, version, errorgroups.Exception{Type: e.Type, Message: e.Message, Stacktrace: e.Stacktrace, Fingerprint: e.Fingerprint, Failed: failed},
			span.TraceID(), count, at)
	}
	return ""
}

// statusMessages are the messages of failures without one, "HTTP 503", made once per code.
var statusMessages sync.Map

func statusMessage(code int64) string {
	if m, ok := statusMessages.Load(code); ok {
		return m.(string)
	}
	m := fmt.Sprintf("HTTP %d", code)
	if code >= 100 && code < 600 { // a bounded set: other codes are not kept
		statusMessages.Store(code, m)
	}
	return m
}
