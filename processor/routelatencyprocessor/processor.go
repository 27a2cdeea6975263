package routelatencyprocessor // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor"

import (
	"context"
	"sync"
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

	// spanNames caches "METHOD route" per pair so that renaming does not build a string per span; at most
	// maxCachedSpanNames.
	namesMu   sync.Mutex
	spanNames map[spanNameKey]string
}

type spanNameKey struct{ method, route string }

const maxCachedSpanNames = 10000

// newRouteProcessor takes the clock that ages guessed routes (time.Now outside tests).
func newRouteProcessor(set component.TelemetrySettings, id component.ID, cfg *Config, now func() time.Time) (*routeProcessor, error) {
	resolver, err := route.NewResolver(cfg.Routes)
	if err != nil {
		return nil, err
	}
	p := &routeProcessor{cfg: cfg, resolver: resolver, now: now, spanNames: make(map[spanNameKey]string)}
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
// it is a raw path, the slow attribute past the route's threshold. Nothing else about a span changes.
func (p *routeProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	if p.cfg.RejectInvalidUTF8 {
		if err := utf8check.Traces(td); err != nil {
			// The status makes the OTLP receiver answer InvalidArgument (HTTP 400) instead of Internal (500).
			return td, consumererror.NewPermanent(status.Error(codes.InvalidArgument, err.Error()))
		}
	}
	var requests, unrouted, overflow int64
	slowOn := p.cfg.Slow.enabled()
	now := p.now()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := ""
		if v, ok := rs.Resource().Attributes().Get(semconv.ServiceName); ok {
			service = v.Str()
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				if !p.resolver.IsRequest(span) {
					continue
				}
				requests++
				req := route.ReadRequest(span)
				res := p.resolver.Resolve(service, &req, now)
				switch res.Source {
				case route.SourceNone:
					unrouted++
					continue
				case route.SourceOverflow:
					// Keep the span's own path: an {overflow} route in a trace would hide what the request was.
					overflow++
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
				if slowOn {
					p.tagSlow(span, res.Route)
				}
			}
		}
	}
	p.telemetry.ProcessorRoutelatencyRequestSpans.Add(ctx, requests)
	p.telemetry.ProcessorRoutelatencyUnroutedSpans.Add(ctx, unrouted)
	p.telemetry.ProcessorRoutelatencyOverflowSpans.Add(ctx, overflow)
	return td, nil
}

func (p *routeProcessor) rename(span ptrace.Span, method, routeName string) {
	if method == "" || !route.NamedAfterRawRequest(span.Name(), method) {
		return
	}
	key := spanNameKey{method: method, route: routeName}
	p.namesMu.Lock()
	name, ok := p.spanNames[key]
	if !ok {
		// Routes come and go (guessed routes and idle services are let go): start afresh rather than keep every
		// name ever made.
		if len(p.spanNames) >= maxCachedSpanNames {
			clear(p.spanNames)
		}
		name = method + " " + routeName
		p.spanNames[key] = name
	}
	p.namesMu.Unlock()
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
