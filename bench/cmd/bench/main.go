// Command bench measures the cost of the routelatency component side by side with a plain pipeline (A) and contrib's
// span_metrics connector (B): CPU per million spans at fixed rates, maximum sustained throughput on one core, peak
// RSS, quantile accuracy and behaviour under a million distinct raw paths. Variants run in turn A B C A B C ... on
// the same binary, input and sink. -smoke runs each variant for a few seconds and fails if one loses spans.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/otelcol-apm/otelcol-apm/bench/internal/load"
	"github.com/otelcol-apm/otelcol-apm/bench/internal/procstat"
	"github.com/otelcol-apm/otelcol-apm/bench/internal/sink"
)

type variant struct {
	name, title string
	configs     []string
}

var variants = []variant{
	{"A", "A: otlp -> memory_limiter -> batch -> otlp", []string{"a-plain"}},
	{"B", "B: A + span_metrics (exponential)", []string{"a-plain", "b-spanmetrics"}},
	{"C", "C: A + routelatency processor and connector", []string{"a-plain", "c-routelatency"}},
}

func main() {
	bin := flag.String("collector", "bin/otelcol-apm", "the otelcol-apm binary")
	smoke := flag.Bool("smoke", false, "a few seconds per variant; fail if a variant loses spans")
	rounds := flag.Int("rounds", 7, "rounds; each runs A, B and C back to back, and ratios are taken within a round")
	window := flag.Duration("window", 10*time.Second, "measurement window of each run")
	out := flag.String("out", "bench", "folder for RESULTS.md and the chart")
	telemetrygen := flag.String("telemetrygen", "", "contrib's telemetrygen binary, for an outside check of the figures")
	profile := flag.String("profile", "", "A, B or C: run that variant at 50k spans/s for the window and write a CPU profile of the collector to bench/profile-<variant>.pprof")
	flag.Parse()
	repo, err := os.Getwd()
	if err != nil {
		log.Fatal(err)
	}
	if *profile != "" {
		if err := runProfile(*bin, repo, *profile, *window); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *smoke {
		if err := runSmoke(*bin, repo); err != nil {
			log.Fatal(err)
		}
		return
	}
	r, err := runAll(*bin, repo, *rounds, *window)
	if err != nil {
		log.Fatal(err)
	}
	if *telemetrygen != "" {
		if r.outside, err = runTelemetrygen(*bin, repo, *telemetrygen, 5000, *window); err != nil {
			log.Fatal(err)
		}
	}
	if err := r.write(filepath.Join(repo, *out)); err != nil {
		log.Fatal(err)
	}
}

// run is one measurement of one variant.
type run struct {
	// ackedPerSec is what the receiver acknowledged; deliveredPerSec what reached the sink within the window.
	ackedPerSec, deliveredPerSec, cpuPerMillion float64
	// utilization is the collector's CPU seconds per second of the window: 1 is the whole core it is pinned to.
	utilization float64
	peakRSS     int64
	// lost counts spans acknowledged to the client that never reached the sink.
	lost int64
}

// measure starts the variant, replays the payload at rate (0: flat out) for window, and reads the collector's CPU
// over the window and its peak RSS. Every acknowledged span must reach the sink.
func measure(bin, repo string, v variant, p *load.Payload, rate float64, window time.Duration, pin bool) (run, error) {
	s, err := sink.Start(false)
	if err != nil {
		return run{}, err
	}
	defer s.Stop()
	c, err := startCollector(bin, repo, v.configs, s, pin)
	if err != nil {
		return run{}, err
	}
	defer c.stop()
	inflight := 4
	if rate == 0 {
		inflight = 16
	}
	cpuBefore, err := procstat.CPU(c.pid())
	if err != nil {
		return run{}, err
	}
	res, err := load.Replay(context.Background(), c.otlp, p, 4, inflight, rate, window, 0)
	if err != nil {
		return run{}, err
	}
	delivered := s.Spans()
	cpuAfter, err := procstat.CPU(c.pid())
	if err != nil {
		return run{}, err
	}
	// Let the batch and the exporter drain, then every acknowledged span must be at the sink.
	deadline := time.Now().Add(15 * time.Second)
	for s.Spans() < res.AckedSpans && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	rss, err := procstat.PeakRSS(c.pid())
	if err != nil {
		return run{}, err
	}
	return run{
		ackedPerSec:     res.SpansPerSecond(),
		deliveredPerSec: float64(delivered) / res.Elapsed.Seconds(),
		cpuPerMillion:   (cpuAfter - cpuBefore).Seconds() / float64(delivered) * 1e6,
		utilization:     (cpuAfter - cpuBefore).Seconds() / res.Elapsed.Seconds(),
		peakRSS:         rss,
		lost:            res.AckedSpans - s.Spans(),
	}, nil
}

func runSmoke(bin, repo string) error {
	p, err := load.Build(load.Realistic, 64, 50, 1)
	if err != nil {
		return err
	}
	failed := 0
	for _, v := range variants {
		r, err := measure(bin, repo, v, p, 5000, 3*time.Second, false)
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		status := "ok"
		if r.lost != 0 || r.ackedPerSec == 0 {
			status, failed = "LOST SPANS", failed+1
		}
		fmt.Printf("bench smoke %s: %.0f spans/s acknowledged, %d lost, %.2f CPU s per million spans, peak RSS %d MiB: %s\n",
			v.name, r.ackedPerSec, r.lost, r.cpuPerMillion, r.peakRSS>>20, status)
	}
	fmt.Printf("bench smoke: %d passed, %d failed\n", len(variants)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d variants lost spans", failed)
	}
	return nil
}

// runProfile runs one variant at the fixed rate, pinned as in the measurements, and saves the collector's CPU profile
// over the window (read from its pprof extension).
func runProfile(bin, repo, name string, window time.Duration) error {
	var v *variant
	for i := range variants {
		if variants[i].name == name {
			v = &variants[i]
		}
	}
	if v == nil {
		return fmt.Errorf("-profile %q: want A, B or C", name)
	}
	p, err := load.Build(load.Realistic, 256, 100, 1)
	if err != nil {
		return err
	}
	s, err := sink.Start(false)
	if err != nil {
		return err
	}
	defer s.Stop()
	pprofAddr := freeAddr()
	c, err := startCollector(bin, repo, append(slices.Clone(v.configs), "pprof"), s, true, "PPROF_ENDPOINT="+pprofAddr)
	if err != nil {
		return err
	}
	defer c.stop()
	done := make(chan error, 1)
	go func() {
		_, err := load.Replay(context.Background(), c.otlp, p, 4, 4, rate, window+2*time.Second, 0)
		done <- err
	}()
	time.Sleep(time.Second)
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, int(window.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out := filepath.Join(repo, "bench", "profile-"+name+".pprof")
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	log.Printf("CPU profile of %s at %d spans/s over %s: %s (go tool pprof -top %s)", name, rate, window, out, out)
	return <-done
}
