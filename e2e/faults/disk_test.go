package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// queueFile is the development route's persistent queue (file_storage names it after the exporter and signal).
func queueFile(col *harness.Collector) string {
	return filepath.Join(col.DataDir, "queue", "exporter_otlp_grpc_jaeger_traces")
}

var salvageLine = regexp.MustCompile(`Storage file was damaged.*"queued_requests": (\d+), "salvaged_requests": (\d+), "unreadable_requests": (\d+), "salvaged_items": (\d+)`)

// TestFault9CorruptedQueue: spans queued while the backend is down, the gateway killed, its queue file damaged
// (cut short as by a power loss, or a page garbled in the middle), the gateway started again. It must start and
// serve; it logs once, with the file name, what it could not read; every span of what it could read reaches the
// backend, and so does everything sent after the start.
func TestFault9CorruptedQueue(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func(t *testing.T, path string)
	}{
		{"cut to 60 %", func(t *testing.T, path string) {
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, info.Size()*6/10); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbled page in the middle", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			at := len(b) / 2 &^ 4095
			for i := 0; i < 64; i++ {
				b[at+i] ^= 0xA5
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			sink := startSeqSink(t, 0)
			sink.Stop() // the backend is down: everything acknowledged stays in the queue
			col := startGateway(t, sink)
			l := newLoad(col, 5000, 2)
			stopLoad := l.start(t)
			time.Sleep(6 * time.Second)
			stopLoad()
			queued, _, _ := l.result()
			col.Kill()
			info, err := os.Stat(queueFile(col))
			if err != nil {
				t.Fatal(err)
			}
			damage.do(t, queueFile(col))

			sink.Restart()
			col.Start(t) // fails the test if the gateway does not become healthy
			m := salvageLine.FindAllStringSubmatch(col.Output(), -1)
			if len(m) != 1 || !strings.Contains(col.Output(), queueFile(col)) {
				t.Fatalf("want one log line naming %s with what was salvaged, got %d:\n%s", queueFile(col), len(m), col.Output())
			}
			requests, _ := strconv.Atoi(m[0][1])
			salvagedRequests, _ := strconv.Atoi(m[0][2])
			unreadable, _ := strconv.Atoi(m[0][3])
			salvagedSpans, _ := strconv.Atoi(m[0][4])

			// Spans sent after the start go through the repaired queue too.
			after := newLoad(col, 2000, 1)
			after.next.Store(uint64(len(queued)) + 1_000_000)
			stopAfter := after.start(t)
			time.Sleep(3 * time.Second)
			stopAfter()
			ackedAfter, _, _ := after.result()

			time.Sleep(5 * time.Second) // the replay of the salvaged requests
			d := waitDelivered(t, sink, ackedAfter, 30*time.Second)
			deliveredBefore := sink.delivery(queued).Delivered - d.Acked + d.Lost
			lostBefore := sink.delivery(queued).Lost
			figures(t, "9 corrupted queue ("+damage.name+")",
				"%d spans acknowledged with the backend down (%d requests queued, file %d KiB); after the damage the gateway started healthy and logged once: %d of %d requests salvaged, %d unreadable, %d spans salvaged; delivered %d of the queued spans (%d lost = %.1f %%), %d of %d sent after the start (lost %d, duplicates %d)",
				len(queued), requests, info.Size()/1024, salvagedRequests, requests, unreadable, salvagedSpans,
				len(queued)-lostBefore, lostBefore, 100*float64(lostBefore)/float64(len(queued)), d.Acked-d.Lost, d.Acked, d.Lost, d.Duplicates)
			_ = deliveredBefore
			if got := len(queued) - lostBefore; got != salvagedSpans {
				t.Errorf("delivered %d of the queued spans, but %d were salvaged: salvaged data was lost after the repair", got, salvagedSpans)
			}
			if unreadable == 0 || salvagedRequests == 0 {
				t.Errorf("the damage should lose some requests and leave others: %d salvaged, %d unreadable", salvagedRequests, unreadable)
			}
			if d.Lost > 0 {
				t.Errorf("%d spans acknowledged after the start were lost", d.Lost)
			}
			if err := healthy(col); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestFault10FullDisk: the queue directory is a 16 MiB filesystem, 12 MiB of it taken by another file, and the
// backend is down under load. When the queue can no longer write, clients must get retryable refusals and nothing
// they were told was accepted may be lost; when space returns (the other file deleted), the gateway accepts again by
// itself, and once the backend is back everything acknowledged arrives.
func TestFault10FullDisk(t *testing.T) {
	dir := t.TempDir()
	queueDir := filepath.Join(dir, "queue")
	if err := os.Mkdir(queueDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", queueDir).CombinedOutput(); err != nil {
		t.Fatalf("mount a 16 MiB tmpfs for the queue (the scenario needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", queueDir).Run() })
	ballast := filepath.Join(queueDir, "ballast.other")
	if err := os.WriteFile(ballast, make([]byte, 12<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	sink := startSeqSink(t, 0)
	sink.Stop()
	col := startGateway(t, sink, "OTELCOL_APM_QUEUE_DIR="+queueDir)
	l := newLoad(col, 2000, 2)
	stopLoad := l.start(t)
	full := false
	harness.Eventually(t, 60*time.Second, "refusals once the disk is full", func() (bool, string) {
		_, _, refused := l.result()
		full = total(refused) > 0
		return full, formatCounts(refused)
	})
	time.Sleep(5 * time.Second)
	ackedFull, _, refusedFull := l.result()

	if err := os.Remove(ballast); err != nil { // space returns
		t.Fatal(err)
	}
	freed := time.Now()
	var recovered time.Duration
	harness.Eventually(t, 60*time.Second, "acceptance after space returned", func() (bool, string) {
		acked, _, _ := l.result()
		recovered = time.Since(freed)
		return len(acked) >= len(ackedFull)+2000, fmt.Sprintf("%d acknowledged", len(acked))
	})
	time.Sleep(2 * time.Second)
	sink.Restart()
	time.Sleep(3 * time.Second)
	stopLoad()
	acked, sent, refused := l.result()
	d := waitDelivered(t, sink, acked, 90*time.Second)
	figures(t, "10 full disk", "queue on a 16 MiB filesystem with 4 MiB free, backend down, 2000 spans/s: %d spans acknowledged before the disk was full, then refused %s; space freed: accepting again after %.1fs; in all %d sent, %d acknowledged, refused %s; backend back: %d delivered, lost after acknowledgement %d, duplicates %d",
		len(ackedFull), formatCounts(refusedFull), recovered.Seconds(), sent, d.Acked, formatCounts(refused), d.Delivered, d.Lost, d.Duplicates)
	if d.Lost > 0 {
		t.Errorf("%d acknowledged spans lost", d.Lost)
	}
	for code := range refused {
		if code != "Unavailable" && code != "ResourceExhausted" {
			t.Errorf("a full disk must be a retryable refusal, got %s", formatCounts(refused))
		}
	}
	if err := healthy(col); err != nil {
		t.Error(err)
	}
}
