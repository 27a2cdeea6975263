package routelatencyconnector // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector"

import (
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/aggregate"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/breakdown"
)

// maxOwnedNames bounds the owned copies of service and environment names the breakdown keys use.
const maxOwnedNames = 10_000

// Breakdown metrics: per route, category (breakdown.category) and target (breakdown.target), the requests that
// touched the part and the distribution of their time in it.
var breakdownMetrics = aggregate.Metrics{
	Requests: aggregate.Metric{Name: "http.server.route.breakdown.requests", Description: "Requests per route that spent time in a part (category and target) of the breakdown."},
	Duration: aggregate.Metric{Name: "http.server.route.breakdown.duration", Description: "Time per request spent in a part of the breakdown (its own time: the instants when it was the innermost span running)."},
}

// Attribute keys of the breakdown metrics' parts.
const (
	attrBreakdownCategory = "breakdown.category"
	attrBreakdownTarget   = "breakdown.target"
)

// breakdowns joins requests with their descendants, adds up their splits per route until the next flush (for the
// dashboard) and records each part into its own metrics store. The connector feeds it under mu, once per resource
// of a batch.
type breakdowns struct {
	mu        sync.Mutex
	store     *breakdown.Store
	reader    *breakdown.Reader
	interval  map[breakdown.Key]*breakdown.Totals // nil without a dashboard
	metrics   *aggregate.Store
	threshold int
	// names holds owned copies of the service and environment names seen, so that keys never point into spans.
	names map[string]string
	// nextSweep paces the sweeps that record requests whose grace has ended (a tenth of the grace).
	nextSweep  time.Time
	sweepEvery time.Duration
	attrs      aggregate.Attributes
}

func newBreakdowns(cfg BreakdownConfig, metrics aggregate.Config, dashboard bool, now time.Time) *breakdowns {
	metrics.Metrics = breakdownMetrics
	metrics.Quantiles, metrics.RequestDuration, metrics.WithoutSketch = nil, false, true
	metrics.DimensionNames = []string{attrBreakdownCategory, attrBreakdownTarget}
	b := &breakdowns{
		store:     breakdown.NewStore(breakdown.Limits{Grace: cfg.Grace, MaxSpans: cfg.MaxSpans, MaxSpansPerTrace: cfg.MaxSpansPerTrace}),
		reader:    breakdown.NewReader(),
		metrics:   aggregate.NewStore(metrics, pcommon.NewTimestampFromTime(now)),
		threshold: cfg.NPlusOneThreshold, names: map[string]string{}, sweepEvery: cfg.Grace / 10,
		attrs: aggregate.Attributes{Dimensions: make([]string, 2)},
	}
	if dashboard {
		b.interval = map[breakdown.Key]*breakdown.Totals{}
	}
	return b
}

// own returns an owned copy of a name read from span memory (the caller holds mu).
func (b *breakdowns) own(name string) string {
	if owned, ok := b.names[name]; ok {
		return owned
	}
	if len(b.names) >= maxOwnedNames {
		clear(b.names)
	}
	owned := strings.Clone(name)
	b.names[owned] = owned
	return owned
}

// sweepIfDue records the requests whose grace has ended, at most every sweepEvery (the caller holds mu).
func (b *breakdowns) sweepIfDue(now time.Time) {
	if now.Before(b.nextSweep) {
		return
	}
	b.nextSweep = now.Add(b.sweepEvery)
	at := pcommon.NewTimestampFromTime(now)
	b.store.Sweep(now, func(req breakdown.Request, split breakdown.Split) {
		if b.interval != nil {
			t, ok := b.interval[req.Key]
			if !ok {
				t = breakdown.NewTotals()
				b.interval[req.Key] = t
			}
			t.Add(split, req.Span, req.Count, req.TraceID, b.threshold)
		}
		a := &b.attrs
		a.Service, a.Environment, a.Method, a.Route = req.Key.Service, req.Key.Environment, req.Key.Method, req.Key.Route
		shard := b.metrics.ShardOf(a.Service)
		shard.Lock()
		for part, nanos := range split.Parts {
			a.Dimensions[0], a.Dimensions[1] = part.Category.String(), part.Target
			shard.Record(a, float64(nanos)/1e9, req.Count, false, req.TraceID, pcommon.SpanID{}, pcommon.Timestamp(req.Span.End), at)
		}
		shard.Unlock()
	})
}

// drain sweeps and hands over what was recorded for the dashboard since the last drain, with the store's counts.
func (b *breakdowns) drain(now time.Time) (map[breakdown.Key]*breakdown.Totals, breakdown.Counts) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextSweep = time.Time{}
	b.sweepIfDue(now)
	out := b.interval
	if out != nil {
		b.interval = map[breakdown.Key]*breakdown.Totals{}
	}
	return out, b.store.Drain()
}
