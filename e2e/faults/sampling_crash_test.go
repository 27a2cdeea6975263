package faults

import (
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/ddintake"
)

// TestFault7CrashWithSampling: kill -9 under load on the Datadog route, whose traces wait in the tail sampler's
// memory until their decision (2 s after the root span); sampling at 100 % so that every span not delivered is a
// loss. This measures the window that sampling opens in the crash guarantee and asserts its bound: no more than what
// arrived in the last decision wait plus a second of timer slack before the kill; everything acknowledged after the
// restart arrives.
func TestFault7CrashWithSampling(t *testing.T) {
	const rate, decisionWait = 2000, 2 * time.Second
	intake, err := ddintake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intake.Close() })
	col := startGateway(t, startSeqSink(t, 0), "DD_INTAKE_URL="+intake.URL, "DATADOG_SAMPLING_PERCENTAGE=100")
	l := newLoad(col, rate, 2)
	l.environment = "production"
	stopLoad := l.start(t)

	time.Sleep(10 * time.Second)
	ackedAtKill, _, _ := l.result()
	col.Kill()
	time.Sleep(2 * time.Second)
	col.Start(t)
	time.Sleep(10 * time.Second)
	stopLoad()
	acked, sent, refused := l.result()

	delivered := func() map[uint64]int {
		seen := map[uint64]int{}
		for _, s := range intake.Spans() {
			if s.Service == "faults-load" {
				seen[s.SpanID]++
			}
		}
		return seen
	}
	var lostBefore, lostAfter, duplicates int
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		seen := delivered()
		lostBefore, lostAfter, duplicates = 0, 0, 0
		for i, seq := range acked {
			if seen[seq] == 0 {
				if i < len(ackedAtKill) {
					lostBefore++
				} else {
					lostAfter++
				}
			}
		}
		for _, n := range seen {
			duplicates += max(n-1, 0)
		}
		if lostAfter == 0 || time.Now().After(deadline) {
			break
		}
	}
	bound := int(float64(rate) * (decisionWait + time.Second).Seconds())
	figures(t, "7 crash with sampling", "sent %d spans at %d/s, acknowledged %d (%d before the kill), refused %s; lost after acknowledgement: %d acknowledged before the kill (bound %d: %s of traffic waiting for its sampling decision), %d after the restart; duplicates %d",
		sent, rate, len(acked), len(ackedAtKill), formatCounts(refused), lostBefore, bound, decisionWait+time.Second, lostAfter, duplicates)
	if lostBefore > bound {
		t.Errorf("%d spans acknowledged before the kill were lost, more than the %d that wait for a decision", lostBefore, bound)
	}
	if lostAfter > 0 {
		t.Errorf("%d spans acknowledged after the restart never arrived", lostAfter)
	}
}
