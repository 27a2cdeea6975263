// Package adjustedcount reads how many requests a sampled span stands for, from the OpenTelemetry probability
// sampling threshold in its W3C tracestate (`ot=th:<hex>`, the "TraceState: Probability Sampling" specification).
package adjustedcount // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/adjustedcount"

import (
	"math"
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// Max is the largest adjusted count a valid threshold gives (th:ffffffffffffff, a probability of 2^-56); anything
// larger is refused rather than multiplied.
const Max = 1 << 56

// Status says how a tracestate was read.
type Status uint8

const (
	// Unsampled: no `th` in the tracestate; the span stands for itself.
	Unsampled Status = iota
	// Sampled: a valid threshold; the span stands for its adjusted count.
	Sampled
	// Malformed: a `th` that is not 1 to 14 hex digits, or an adjusted count above Max; the span counts 1.
	Malformed
)

// Of returns the span's adjusted count as a whole number: exact when 1/p is an integer, otherwise rounded up or down
// at random with the probability of the fraction, so that sums stay unbiased. random is uniform in [0, 1) and must
// not depend on the sampling decision (the span id's bits do; the trace id's do not).
func Of(traceState string, random float64) (uint64, Status) {
	if traceState == "" {
		return 1, Unsampled
	}
	th, ok := thresholdValue(traceState)
	if !ok {
		return 1, Unsampled
	}
	threshold, err := sampling.TValueToThreshold(th)
	if err != nil || !isLowerHex(th) {
		return 1, Malformed
	}
	count := threshold.AdjustedCount()
	if !(count >= 1) || count > Max { // NaN too
		return 1, Malformed
	}
	whole, frac := math.Modf(count)
	n := uint64(whole)
	if frac > 0 && random < frac {
		n++
	}
	return n, Sampled
}

// thresholdValue finds the `th` sub-key of the `ot` list member without allocating: "vendor=x,ot=rv:..;th:c" -> "c".
func thresholdValue(traceState string) (string, bool) {
	for member := range strings.SplitSeq(traceState, ",") {
		member = strings.TrimSpace(member)
		value, ok := strings.CutPrefix(member, "ot=")
		if !ok {
			continue
		}
		for field := range strings.SplitSeq(value, ";") {
			if th, ok := strings.CutPrefix(field, "th:"); ok {
				return th, true
			}
		}
		return "", false
	}
	return "", false
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
