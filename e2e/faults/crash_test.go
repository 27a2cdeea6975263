package faults

import (
	"testing"
	"time"
)

// TestFault1CrashUnderLoad: kill -9 of the gateway under steady load, restart on the same queue directory; every
// span the client saw acknowledged reaches the backend.
func TestFault1CrashUnderLoad(t *testing.T) {
	sink := startSeqSink(t, 0)
	col := startGateway(t, sink)
	l := newLoad(col, 5000, 4)
	stopLoad := l.start(t)

	time.Sleep(10 * time.Second)
	ackedAtKill, _, _ := l.result()
	col.Kill()
	killed := time.Now()
	time.Sleep(2 * time.Second)
	col.Start(t) // same ports, same queue directory
	restarted := time.Since(killed)
	time.Sleep(10 * time.Second)
	stopLoad()

	acked, sent, refused := l.result()
	d := waitDelivered(t, sink, acked, 60*time.Second)
	figures(t, "1 crash", "sent %d spans, acknowledged %d (%d before the kill), refused %s; delivered %d distinct, lost after acknowledgement %d, duplicates %d; down %.1fs",
		sent, d.Acked, len(ackedAtKill), formatCounts(refused), d.Delivered, d.Lost, d.Duplicates, restarted.Seconds())
	if d.Lost > 0 {
		t.Errorf("%d acknowledged spans never reached the backend after the restart", d.Lost)
	}
	if len(ackedAtKill) == 0 || d.Acked == len(ackedAtKill) {
		t.Errorf("the load was not acknowledged both before (%d) and after (%d) the kill", len(ackedAtKill), d.Acked)
	}
}
