package routelatencyconnector // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector"

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/aggregate"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/breakdown"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/errorgroups"
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

// breakdowns joins requests with their descendants and adds up their splits per route until the next flush, where
// the totals become the breakdown metrics (from their sketches: one recording per request serves both) and go to
// the dashboard. The connector feeds it under mu, once per resource of a batch.
type breakdowns struct {
	mu        sync.Mutex
	store     *breakdown.Store
	reader    *breakdown.Reader
	interval  map[breakdown.Key]*breakdown.Totals
	metrics   *aggregate.Store
	threshold int
	// names holds owned copies of the service and environment names seen, so that keys never point into spans,
	// and a number for each, the join's key; numbers are never reused, so that clearing names at its bound
	// cannot make two services meet.
	names    map[string]ownedName
	lastName uint32
	// errors receives the exceptions of the requests' descendants (nil with errors off).
	errors *errorgroups.Groups
	// nextSweep paces the sweeps that record requests whose grace has ended (a tenth of the grace).
	nextSweep  time.Time
	sweepEvery time.Duration
	// recordFunc is record, made once; recordAt is the time the store's calls of it record at.
	recordFunc func(breakdown.Request, breakdown.Split)
	recordAt   time.Time
}

// breakdownShards are the joins, by service, sharing one max_spans and one metrics store. There are as many as the
// route series store has shards, and a service's join is the one at its series shard's index: receivers on several
// cores rarely wait for one another, and a batch hashes its service once for both (a service's spans, hence a
// trace's part in it, always meet in one join).
type breakdownShards struct {
	shards   []*breakdowns
	metrics  *aggregate.Store
	held     atomic.Int64
	maxSpans int64
	free     breakdown.FreeCounts
}

func newBreakdownShards(cfg BreakdownConfig, metrics aggregate.Config, shards int, now time.Time, errors *errorgroups.Groups) *breakdownShards {
	metrics.Metrics = breakdownMetrics
	metrics.Quantiles, metrics.RequestDuration, metrics.WithoutSketch = nil, false, true
	metrics.DimensionNames = []string{attrBreakdownCategory, attrBreakdownTarget}
	bs := &breakdownShards{metrics: aggregate.NewStore(metrics, pcommon.NewTimestampFromTime(now)), maxSpans: int64(cfg.MaxSpans)}
	// A sweep (every tenth of the grace) lets go of about as many entries as new traces take until the next one: at
	// most a tenth of max_spans, which the free lists keep for reuse instead of the GC taking them.
	limits := breakdown.Limits{Grace: cfg.Grace, MaxSpans: cfg.MaxSpans, MaxSpansPerTrace: cfg.MaxSpansPerTrace, Shared: &bs.held,
		FreeEntries: max(breakdown.DefaultFreeEntries, cfg.MaxSpans/10), Free: &bs.free}
	for range shards {
		b := &breakdowns{
			store: breakdown.NewStore(limits), reader: breakdown.NewReader(), interval: map[breakdown.Key]*breakdown.Totals{},
			metrics: bs.metrics, threshold: cfg.NPlusOneThreshold, names: map[string]ownedName{}, sweepEvery: cfg.Grace / 10,
			errors: errors,
		}
		b.recordFunc = b.record
		bs.shards = append(bs.shards, b)
	}
	return bs
}

// drain drains every shard: the interval's totals (a service's routes are in one shard) and the counts summed.
func (bs *breakdownShards) drain(now time.Time) (map[breakdown.Key]*breakdown.Totals, breakdown.Counts) {
	out := map[breakdown.Key]*breakdown.Totals{}
	var sum breakdown.Counts
	for _, b := range bs.shards {
		totals, c := b.drain(now)
		maps.Copy(out, totals)
		sum.Add(c)
	}
	return out, sum
}

// Held is the records held over the shards.
func (bs *breakdownShards) Held() int64 { return bs.held.Load() }

type ownedName struct {
	name string
	id   uint32
}

// own returns an owned copy of a name read from span memory, and its number (the caller holds mu).
func (b *breakdowns) own(name string) (string, uint32) {
	if owned, ok := b.names[name]; ok {
		return owned.name, owned.id
	}
	if len(b.names) >= maxOwnedNames {
		clear(b.names)
	}
	b.lastName++
	owned := ownedName{strings.Clone(name), b.lastName}
	b.names[owned.name] = owned
	return owned.name, owned.id
}

// sweepIfDue records the requests whose grace has ended, at most every sweepEvery (the caller holds mu).
func (b *breakdowns) sweepIfDue(now time.Time) {
	if now.Before(b.nextSweep) {
		return
	}
	b.nextSweep = now.Add(b.sweepEvery)
	b.recordAt = now
	b.store.Sweep(now, b.recordFunc)
}

// makeRoom makes room for a resource's spans in the joins, whose max_spans is shared (the caller holds shard i's
// mu): from shard i's oldest records (breakdown.Store.MakeRoom), then, while that is not enough, from those of the
// other shards it can lock without waiting, so that one service's records (a worker's spans that are not requests)
// cannot keep the room from the services of other shards. TryLock: two receivers doing this at once never wait on
// each other.
func (bs *breakdownShards) makeRoom(i int, now time.Time, rs ptrace.ResourceSpans) {
	n := 0
	sss := rs.ScopeSpans()
	for j := 0; j < sss.Len(); j++ {
		n += sss.At(j).Spans().Len()
	}
	bs.shards[i].makeRoom(now, n)
	for k := 1; k < len(bs.shards) && bs.held.Load() > bs.maxSpans-int64(n); k++ {
		if other := bs.shards[(i+k)%len(bs.shards)]; other.mu.TryLock() {
			other.makeRoom(now, n)
			other.mu.Unlock()
		}
	}
}

// makeRoom makes room in this join for n records (the caller holds mu).
func (b *breakdowns) makeRoom(now time.Time, n int) {
	b.recordAt = now
	b.store.MakeRoom(now, n, b.recordFunc)
}

// record adds a recorded request's split into its route's totals, and its descendants' exceptions into the error
// groups.
func (b *breakdowns) record(req breakdown.Request, split breakdown.Split) {
	now := b.recordAt
	t, ok := b.interval[req.Key]
	if !ok {
		t = breakdown.NewTotals()
		b.interval[req.Key] = t
	}
	t.Add(split, req.Span, req.Count, req.TraceID, b.threshold)
	if b.errors != nil {
		route := errorgroups.RouteKey{Service: req.Key.Service, Environment: req.Key.Environment, Method: req.Key.Method, Route: req.Key.Route}
		for _, e := range split.Exceptions {
			b.errors.Record(route, req.Version, errorgroups.Exception{Type: e.Type, Message: e.Message, Stacktrace: e.Stacktrace,
				Fingerprint: e.Fingerprint, Failed: req.Failed}, req.TraceID, req.Count, now)
		}
		if req.Unexplained != "" && len(split.Exceptions) == 0 {
			b.errors.Record(route, req.Version, errorgroups.Exception{Type: errorgroups.StatusError, Message: req.Unexplained, Failed: true},
				req.TraceID, req.Count, now)
		}
	}
}

// drain sweeps, records the interval's totals into the breakdown metrics and hands them over, with the store's
// counts.
func (b *breakdowns) drain(now time.Time) (map[breakdown.Key]*breakdown.Totals, breakdown.Counts) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextSweep = time.Time{}
	b.sweepIfDue(now)
	out := b.interval
	b.interval = map[breakdown.Key]*breakdown.Totals{}
	at := pcommon.NewTimestampFromTime(now)
	a := aggregate.Attributes{Dimensions: make([]string, 2)}
	for key, t := range out {
		a.Service, a.Environment, a.Method, a.Route = key.Service, key.Environment, key.Method, key.Route
		shard := b.metrics.ShardOf(a.Service)
		shard.Lock()
		for part, pt := range t.Parts {
			a.Dimensions[0], a.Dimensions[1] = part.Category.String(), part.Target
			shard.RecordDistribution(&a, pt.Requests, float64(pt.Nanos)/1e9, pt.TimeBins, at)
		}
		shard.Unlock()
	}
	return out, b.store.Drain()
}
