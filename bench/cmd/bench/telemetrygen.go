package main

import (
	"fmt"
	"log"
	"os/exec"
	"time"

	"github.com/otelcol-apm/otelcol-apm/bench/internal/procstat"
	"github.com/otelcol-apm/otelcol-apm/bench/internal/sink"
)

// outsideCheck is variant A and C driven by contrib's telemetrygen instead of our generator: the same collector,
// another client, to check that the figures are not an artefact of the load generator.
type outsideCheck struct {
	variant                    string
	sinkSpans                  int64
	spansPerSec, cpuPerMillion float64
}

func runTelemetrygen(bin, repo, telemetrygen string, rate int, d time.Duration) ([]outsideCheck, error) {
	var out []outsideCheck
	for _, v := range []variant{variants[0], variants[2]} {
		s, err := sink.Start(false)
		if err != nil {
			return nil, err
		}
		c, err := startCollector(bin, repo, v.configs, s, true)
		if err != nil {
			return nil, err
		}
		cpuBefore, _ := procstat.CPU(c.pid())
		cmd := exec.Command(telemetrygen, "traces", "--otlp-endpoint", c.otlp, "--otlp-insecure",
			"--rate", fmt.Sprint(rate), "--duration", d.String(), "--workers", "2", "--child-spans", "3",
			"--span-duration", "40ms", "--otlp-attributes", `deployment.environment.name="production"`,
			"--telemetry-attributes", `http.request.method="GET"`, "--telemetry-attributes", `url.path="/api/v1/items/42"`)
		outText, err := cmd.CombinedOutput()
		if err != nil {
			c.stop()
			s.Stop()
			return nil, fmt.Errorf("telemetrygen: %v\n%s", err, outText)
		}
		cpuAfter, _ := procstat.CPU(c.pid())
		time.Sleep(2 * time.Second)
		got := s.Spans()
		c.stop()
		s.Stop()
		check := outsideCheck{
			variant: v.name, sinkSpans: got, spansPerSec: float64(got) / d.Seconds(),
			cpuPerMillion: (cpuAfter - cpuBefore).Seconds() / float64(got) * 1e6,
		}
		log.Printf("telemetrygen %s: %d spans at the sink, %.0f/s, %.3f CPU s/Mspan", v.name, got, check.spansPerSec, check.cpuPerMillion)
		out = append(out, check)
	}
	return out, nil
}
