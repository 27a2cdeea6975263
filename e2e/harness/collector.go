package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Binary returns the otelcol-apm binary that `make` built once for the whole run (OTELCOL_APM_BIN).
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("OTELCOL_APM_BIN")
	if bin == "" {
		t.Fatal("OTELCOL_APM_BIN is not set: run the suites through make (make e2e), which builds bin/otelcol-apm once")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("OTELCOL_APM_BIN: %v", err)
	}
	return bin
}

// Collector is an otelcol-apm with every endpoint of the shipped configs on its own loopback port. Creds is set
// for the hardened configurations: its receivers then take TLS and a bearer token only.
type Collector struct {
	*Process
	OTLPGRPC, OTLPHTTP, Health, RouteMetrics, Telemetry, Pprof, Dashboard string
	DataDir                                                               string
	Creds                                                                 *Credentials
	args, env                                                             []string
}

// ConfigPath returns the path of a configuration file given relative to the repository root (an absolute path as
// it is).
func ConfigPath(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(RepoRoot(), path)
}

// ConfigPaths is ConfigPath of each.
func ConfigPaths(rel ...string) []string {
	out := make([]string, len(rel))
	for i, r := range rel {
		out[i] = ConfigPath(r)
	}
	return out
}

// StartCollector runs otelcol-apm with the given configs (paths) and extra environment, and waits for health.
func StartCollector(t testing.TB, configs []string, env ...string) *Collector {
	t.Helper()
	c := NewCollector(t, configs, nil, env...)
	c.Start(t)
	return c
}

// StartSecureCollector is StartCollector for a hardened configuration, with fresh credentials.
func StartSecureCollector(t testing.TB, configs []string, env ...string) *Collector {
	t.Helper()
	c := NewCollector(t, configs, NewCredentials(t), env...)
	c.Start(t)
	return c
}

// NewCollector prepares ports, a data directory (with the export queue in DataDir/queue) and the environment,
// without starting the process.
func NewCollector(t testing.TB, configs []string, creds *Credentials, env ...string) *Collector {
	t.Helper()
	c := &Collector{
		OTLPGRPC: Addr(t), OTLPHTTP: Addr(t), Health: Addr(t), RouteMetrics: Addr(t), Pprof: Addr(t), Dashboard: Addr(t),
		Telemetry: fmt.Sprint(FreePort(t)), DataDir: t.TempDir(), Creds: creds,
	}
	for _, cfg := range configs {
		c.args = append(c.args, "--config", cfg)
	}
	c.env = []string{
		"OTLP_GRPC_ENDPOINT=" + c.OTLPGRPC,
		"OTLP_HTTP_ENDPOINT=" + c.OTLPHTTP,
		"HEALTH_CHECK_ENDPOINT=" + c.Health,
		"ROUTE_METRICS_ENDPOINT=" + c.RouteMetrics,
		"TELEMETRY_METRICS_PORT=" + c.Telemetry,
		"OTELCOL_APM_DATA_DIR=" + c.DataDir,
		"OTELCOL_APM_QUEUE_DIR=" + filepath.Join(c.DataDir, "queue"),
		"ROUTE_METRICS_FLUSH_INTERVAL=1s",
		"DASHBOARD_ENDPOINT=" + c.Dashboard,
		"PPROF_ENDPOINT=" + c.Pprof,
		// The datadog exporter's hostname chain builds an AWS client that asks the EC2 metadata service at a
		// link-local address, hostname set or not: nothing of the suites may leave loopback.
		"AWS_EC2_METADATA_DISABLED=true",
	}
	if creds != nil {
		c.env = append(c.env, creds.CollectorEnv()...)
	}
	c.env = append(c.env, env...)
	return c
}

// Setenv adds NAME=value to the environment of the next Start (a later value of a name wins).
func (c *Collector) Setenv(kv string) { c.env = append(c.env, kv) }

// AddArgs adds command-line flags to the next Start (a --feature-gates one, for instance).
func (c *Collector) AddArgs(args ...string) { c.args = append(c.args, args...) }

// Start runs the process (again, after a Kill: same ports, same data directory) and waits for health.
func (c *Collector) Start(t testing.TB) {
	t.Helper()
	c.Process = Start(t, "otelcol-apm", Binary(t), c.args, c.env...)
	WaitHTTP(t, c.Process, "http://"+c.Health+"/", 30*time.Second)
}

// Dial opens a gRPC connection to the OTLP receiver: TLS with the bearer token when the collector is hardened.
func (c *Collector) Dial() (*grpc.ClientConn, error) {
	if c.Creds == nil {
		return grpc.NewClient(c.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	return grpc.NewClient(c.OTLPGRPC, grpc.WithTransportCredentials(credentials.NewTLS(c.Creds.ClientTLS())))
}

// OutgoingContext carries the bearer token of a hardened collector.
func (c *Collector) OutgoingContext(ctx context.Context) context.Context {
	if c.Creds == nil {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.Creds.Token)
}

// Export sends td over OTLP/gRPC and returns the collector's answer.
func (c *Collector) Export(td ptrace.Traces) error {
	conn, err := c.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(c.OutgoingContext(ctx), ptraceotlp.NewExportRequestFromTraces(td))
	return err
}

// Send exports td and fails the test when the collector does not acknowledge it.
func (c *Collector) Send(t testing.TB, td ptrace.Traces) {
	t.Helper()
	if err := c.Export(td); err != nil {
		t.Fatalf("export %d spans to %s: %v", td.SpanCount(), c.OTLPGRPC, err)
	}
}
