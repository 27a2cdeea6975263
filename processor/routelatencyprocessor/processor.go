package routelatencyprocessor // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor"

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/metadata"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/route"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/utf8check"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

type routeProcessor struct {
	cfg       *Config
	resolver  *route.Resolver
	telemetry *metadata.TelemetryBuilder
	now       func() time.Time

	// spanNames caches "METHOD route" (spanNameKey to string) so that renaming does not build a string per span;
	// at most about maxCachedSpanNames. A sync.Map: receivers on every core read it at once, without a lock.
	spanNames     sync.Map
	spanNameCount atomic.Int64

	actionDropped, actionTruncated metric.AddOption
}

type spanNameKey struct{ method, route string }

const maxCachedSpanNames = 10000

// newRouteProcessor takes the clock that ages guessed routes (time.Now outside tests).
func newRouteProcessor(set component.TelemetrySettings, id component.ID, cfg *Config, now func() time.Time) (*routeProcessor, error) {
	resolver, err := route.NewResolver(cfg.Routes)
	if err != nil {
		return nil, err
	}
	p := &routeProcessor{cfg: cfg, resolver: resolver, now: now,
		actionDropped:   metric.WithAttributes(attribute.String("action", "dropped")),
		actionTruncated: metric.WithAttributes(attribute.String("action", "truncated"))}
	if p.telemetry, err = metadata.NewTelemetryBuilder(set); err != nil {
		return nil, err
	}
	// Several routelatency processors in one collector each report their own table (the collector's exposition
	// shows no component label of its own for these gauges).
	componentID := metric.WithAttributes(attribute.String("otelcol.component.id", id.String()))
	err = p.telemetry.RegisterProcessorRoutelatencyRoutesCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(int64(resolver.Tracked()), componentID)
		return nil
	})
	return p, err
}

func (p *routeProcessor) shutdown(context.Context) error {
	p.telemetry.Shutdown()
	return nil
}

// processTraces changes request spans in place: http.route when absent (with http.route.guessed=true when the id
// rules made it; http.route.unmatched=true instead of a route for a 404 or 405 that matched none), the span name when
// it is a raw path, the slow attribute past the route's threshold; with limits set, the attributes of every span,
// span event and resource beyond them are dropped or cut, and counted. Nothing else about a span changes.
func (p *routeProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	if p.cfg.RejectInvalidUTF8 {
		if err := utf8check.Traces(td); err != nil {
			// The status makes the OTLP receiver answer InvalidArgument (HTTP 400) instead of Internal (500).
			return td, consumererror.NewPermanent(status.Error(codes.InvalidArgument, err.Error()))
		}
	}
	var c counts
	now := p.now()
	limitsOn := p.cfg.Limits.enabled()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := ""
		if v, ok := rs.Resource().Attributes().Get(semconv.ServiceName); ok {
			service = v.Str()
		}
		if limitsOn {
			c.limited(p.cfg.Limits.apply(rs.Resource().Attributes()))
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				if p.resolver.IsRequest(span) {
					p.processRequest(span, service, now, &c)
				}
				// Limits come last, so that the route was read from every attribute the span came with.
				if limitsOn {
					c.limited(p.cfg.Limits.apply(span.Attributes()))
					for e := 0; e < span.Events().Len(); e++ {
						c.limited(p.cfg.Limits.apply(span.Events().At(e).Attributes()))
					}
				}
			}
		}
	}
	p.telemetry.ProcessorRoutelatencyRequestSpans.Add(ctx, c.requests)
	p.telemetry.ProcessorRoutelatencyUnroutedSpans.Add(ctx, c.unrouted)
	p.telemetry.ProcessorRoutelatencyOverflowSpans.Add(ctx, c.overflow)
	if limitsOn {
		p.telemetry.ProcessorRoutelatencyLimitedAttributes.Add(ctx, c.dropped, p.actionDropped)
		p.telemetry.ProcessorRoutelatencyLimitedAttributes.Add(ctx, c.truncated, p.actionTruncated)
	}
	return td, nil
}

// counts are one batch's own telemetry.
type counts struct{ requests, unrouted, overflow, dropped, truncated int64 }

func (c *counts) limited(dropped, truncated int64) {
	c.dropped += dropped
	c.truncated += truncated
}

// processRequest resolves a request span's route and writes what the processor adds to it.
func (p *routeProcessor) processRequest(span ptrace.Span, service string, now time.Time, c *counts) {
	c.requests++
	req := route.ReadRequest(span)
	res := p.resolver.Resolve(service, &req, now)
	switch res.Source {
	case route.SourceNone:
		c.unrouted++
		return
	case route.SourceOverflow:
		// Keep the span's own path: an {overflow} route in a trace would hide what the request was.
		c.overflow++
	case route.SourceHTTPRoute:
	case route.SourceIDRules:
		span.Attributes().PutStr(route.AttrHTTPRoute, res.Route)
		span.Attributes().PutBool(route.AttrRouteGuessed, true)
	case route.SourceUnmatched:
		// The application matched no route: http.route stays absent, the mark says the gateway looked.
		span.Attributes().PutBool(route.AttrRouteUnmatched, true)
	default:
		span.Attributes().PutStr(route.AttrHTTPRoute, res.Route)
	}
	if p.cfg.RenameSpans && res.Source != route.SourceOverflow {
		p.rename(span, req.Method, res.Route)
	}
	if p.cfg.Slow.enabled() {
		p.tagSlow(span, res.Route)
	}
}

func (p *routeProcessor) rename(span ptrace.Span, method, routeName string) {
	if method == "" || !route.NamedAfterRawRequest(span.Name(), method) {
		return
	}
	key := spanNameKey{method: method, route: routeName}
	var name string
	if cached, ok := p.spanNames.Load(key); ok {
		name = cached.(string)
	} else {
		// Routes come and go (guessed routes and idle services are let go): start afresh rather than keep every
		// name ever made.
		if p.spanNameCount.Add(1) > maxCachedSpanNames {
			p.spanNames.Clear()
			p.spanNameCount.Store(1)
		}
		name = method + " " + routeName
		p.spanNames.Store(key, name)
	}
	if span.Name() != name {
		span.SetName(name)
	}
}

func (p *routeProcessor) tagSlow(span ptrace.Span, routeName string) {
	threshold := p.cfg.Slow.threshold(routeName)
	if threshold <= 0 {
		return
	}
	start, end := span.StartTimestamp(), span.EndTimestamp()
	if end > start && time.Duration(end-start) >= threshold {
		span.Attributes().PutBool(p.cfg.Slow.Attribute, true)
	}
}
