package routelatencyconnector

import (
	"os"
	"testing"
)

// TestCostBudget is the regression guard of `make bench-guard` (part of `make test`, not run under -race): the
// component's benchmarks against budgets of twice their documented cost per span, and allocations per batch
// (deterministic) against their documented counts plus a tenth. The best of three runs is taken, so that a noisy
// neighbour does not fail it; a real doubling does.
func TestCostBudget(t *testing.T) {
	if os.Getenv("ROUTELATENCY_COST_BUDGET") == "" {
		t.Skip("run by make bench-guard, without the race detector")
	}
	for _, tc := range []struct {
		name           string
		bench          func(*testing.B)
		nsPerSpan      float64 // documented median, component README
		allocsPerBatch int64   // a batch is 1,000 requests, ~4,500 spans
	}{
		{"BenchmarkConnector", BenchmarkConnector, 60, 0},
		{"BenchmarkPipeline", BenchmarkPipeline, 190, 1000},
	} {
		best := testing.BenchmarkResult{}
		for range 3 {
			r := testing.Benchmark(tc.bench)
			if best.N == 0 || r.Extra["ns/span"] < best.Extra["ns/span"] {
				best = r
			}
		}
		ns, allocs := best.Extra["ns/span"], best.AllocsPerOp()
		t.Logf("%s: %.1f ns/span (budget %.0f), %d allocs per batch (budget %d)", tc.name, ns, 2*tc.nsPerSpan, allocs, tc.allocsPerBatch+tc.allocsPerBatch/10)
		if ns > 2*tc.nsPerSpan {
			t.Errorf("%s: %.1f ns/span, more than twice the documented %.0f", tc.name, ns, tc.nsPerSpan)
		}
		if allocs > tc.allocsPerBatch+tc.allocsPerBatch/10 {
			t.Errorf("%s: %d allocations per batch, documented %d", tc.name, allocs, tc.allocsPerBatch)
		}
	}
}
