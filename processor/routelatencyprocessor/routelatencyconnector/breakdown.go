package routelatencyconnector // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector"

import (
	"strings"
	"sync"
	"time"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/breakdown"
)

// maxOwnedNames bounds the owned copies of service and environment names the breakdown keys use.
const maxOwnedNames = 10_000

// breakdowns joins requests with their descendants and adds up their splits per route until the next flush. The
// connector feeds it under mu, once per resource of a batch.
type breakdowns struct {
	mu        sync.Mutex
	store     *breakdown.Store
	interval  map[breakdown.Key]*breakdown.Totals
	threshold int
	// names holds owned copies of the service and environment names seen, so that keys never point into spans.
	names map[string]string
	// nextSweep paces the sweeps that record requests whose grace has ended (a tenth of the grace).
	nextSweep  time.Time
	sweepEvery time.Duration
}

func newBreakdowns(cfg BreakdownConfig) *breakdowns {
	return &breakdowns{
		store:     breakdown.NewStore(breakdown.Limits{Grace: cfg.Grace, MaxSpans: cfg.MaxSpans, MaxSpansPerTrace: cfg.MaxSpansPerTrace}),
		interval:  map[breakdown.Key]*breakdown.Totals{},
		threshold: cfg.NPlusOneThreshold, names: map[string]string{}, sweepEvery: cfg.Grace / 10,
	}
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
	b.store.Sweep(now, func(req breakdown.Request, split breakdown.Split) {
		t, ok := b.interval[req.Key]
		if !ok {
			t = breakdown.NewTotals()
			b.interval[req.Key] = t
		}
		t.Add(split, req.Span, req.TraceID, b.threshold)
	})
}

// drain sweeps and hands over what was recorded since the last drain, with the store's counts.
func (b *breakdowns) drain(now time.Time) (map[breakdown.Key]*breakdown.Totals, breakdown.Counts, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextSweep = time.Time{}
	b.sweepIfDue(now)
	out := b.interval
	b.interval = map[breakdown.Key]*breakdown.Totals{}
	return out, b.store.Drain(), b.store.Held()
}
