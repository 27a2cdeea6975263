package adjustedcount

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAdjustedCountFromThreshold(t *testing.T) {
	for _, tc := range []struct {
		traceState string
		want       uint64
		status     Status
	}{
		{"", 1, Unsampled},
		{"dd=s:1;o:rum", 1, Unsampled},
		{"ot=rv:abcdef01234567", 1, Unsampled},
		{"ot=th:0", 1, Sampled},  // 100 %
		{"ot=th:8", 2, Sampled},  // 50 %
		{"ot=th:c", 4, Sampled},  // 25 %
		{"ot=th:f", 16, Sampled}, // 1/16
		{"vendor=a,ot=rv:00000000000001;th:fc", 64, Sampled},
		{"ot=th:ffffffffffffff", Max, Sampled}, // the smallest probability there is
		{"ot=th:", 1, Malformed},
		{"ot=th:xyz", 1, Malformed},
		{"ot=th:C", 1, Malformed},               // upper case is not allowed by the spec
		{"ot=th:fffffffffffffff", 1, Malformed}, // 15 digits
		{"ot=th:-1", 1, Malformed},
	} {
		n, status := Of(tc.traceState, 0.5)
		assert.Equal(t, tc.want, n, tc.traceState)
		assert.Equal(t, tc.status, status, tc.traceState)
	}
}

// 10 % sampling is th:e666... (p = 0.1 up to the 56-bit grid): each span stands for ~10.0000000000001 requests, so
// rounding is random, and the mean over many spans is the adjusted count.
func TestNonIntegerCountsRoundWithoutBias(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const spans = 200_000
	for _, tc := range []struct {
		th   string
		want float64
	}{{"ot=th:e666", 65536.0 / (65536 - 0xe666)}, {"ot=th:aaab", 65536.0 / (65536 - 0xaaab)}} {
		var sum uint64
		for range spans {
			n, status := Of(tc.th, rng.Float64())
			assert.Equal(t, Sampled, status)
			sum += n
		}
		mean := float64(sum) / spans
		assert.InDelta(t, tc.want, mean, tc.want*0.002, tc.th)
	}
}

func TestOfDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(1000, func() {
		Of("vendor=a,ot=rv:00000000000001;th:fc", 0.3)
	})
	assert.Zero(t, allocs)
}
