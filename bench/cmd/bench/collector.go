package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/otelcol-apm/otelcol-apm/bench/internal/sink"
)

// collector is one otelcol-apm process of a variant.
type collector struct {
	cmd  *exec.Cmd
	otlp string
	log  *os.File
	done chan error
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startCollector runs the binary with the variant's configs; pinned to core 0 when pin is set (the driver runs on
// core 1), so that the collector's figures are its own.
// goGC is the collector's GOGC in every run (the Go default), with no GOMEMLIMIT, written into RESULTS.md.
const goGC = "100"

func startCollector(bin, repo string, configs []string, s *sink.Sink, pin bool, env ...string) (*collector, error) {
	c := &collector{otlp: freeAddr(), done: make(chan error, 1)}
	health := freeAddr()
	var args []string
	for _, cfg := range configs {
		args = append(args, "--config", filepath.Join(repo, "bench", "configs", cfg+".yaml"))
	}
	// Pinned: core 0 only. Unpinned: every online core, set explicitly, because a child inherits its parent's
	// affinity and make bench pins this driver to core 1.
	cores := fmt.Sprintf("0-%d", onlineCPUs()-1)
	if pin {
		cores = "0"
	}
	args = append([]string{"-c", cores, bin}, args...)
	name := "taskset"
	c.cmd = exec.Command(name, args...)
	c.cmd.Env = append(os.Environ(), append([]string{
		"OTLP_GRPC_ENDPOINT=" + c.otlp, "HEALTH_CHECK_ENDPOINT=" + health, "SINK_ENDPOINT=" + s.Addr, "SINK_METRICS_ENDPOINT=" + s.MetricsAddr,
		"GOGC=" + goGC, "GOMEMLIMIT=off", "AWS_EC2_METADATA_DISABLED=true",
	}, env...)...) // pinned, the Go runtime sees one CPU in its affinity mask and sizes GOMAXPROCS to it
	var err error
	if c.log, err = os.CreateTemp("", "otelcol-apm-bench-*.log"); err != nil {
		return nil, err
	}
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { c.done <- c.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + health + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		select {
		case err := <-c.done:
			return nil, fmt.Errorf("collector exited at start: %v (log %s)", err, c.log.Name())
		default:
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("collector not healthy after 30s (log %s)", c.log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *collector) pid() int { return c.cmd.Process.Pid }

// stop asks for a graceful shutdown (which flushes the connectors) and waits up to 30 s before killing.
func (c *collector) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.log.Close()
	if os.Getenv("BENCH_KEEP_LOGS") == "" {
		_ = os.Remove(c.log.Name())
	}
}
