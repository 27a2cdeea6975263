package routelatencyprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/ptracetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/metadatatest"
)

func newTestProcessor(t *testing.T, cfg *Config) (func(ptrace.Traces) ptrace.Traces, *componenttest.Telemetry) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	sink := &consumertest.TracesSink{}
	p, err := NewFactory().CreateTraces(context.Background(), metadatatest.NewSettings(tel), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return func(td ptrace.Traces) ptrace.Traces {
		require.NoError(t, p.ConsumeTraces(context.Background(), td))
		all := sink.AllTraces()
		return all[len(all)-1]
	}, tel
}

// TestProcessorGolden runs testdata/input.yaml (spans of every resolution path, a client span, a non-HTTP span,
// a slow request) through the processor and compares with testdata/expected.yaml.
func TestProcessorGolden(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Routes.Templates = []string{"/users/{user_id}/orders/{order_id}"}
	cfg.Slow.Default = 500 * time.Millisecond
	cfg.Slow.Routes = map[string]time.Duration{"/checkout": 2 * time.Second}
	process, tel := newTestProcessor(t, cfg)

	input, err := golden.ReadTraces(filepath.Join("testdata", "input.yaml"))
	require.NoError(t, err)
	got := process(input)

	expectedPath := filepath.Join("testdata", "expected.yaml")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, golden.WriteTracesToFile(expectedPath, got))
	}
	want, err := golden.ReadTraces(expectedPath)
	require.NoError(t, err)
	require.NoError(t, ptracetest.CompareTraces(want, got))

	metadatatest.AssertEqualProcessorRoutelatencyRequestSpans(t, tel, []metricdata.DataPoint[int64]{{Value: 9}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorRoutelatencyUnroutedSpans(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorRoutelatencyOverflowSpans(t, tel, []metricdata.DataPoint[int64]{{Value: 0}}, metricdatatest.IgnoreTimestamp())
}

func TestProcessorKeepsRawPathOnOverflow(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Routes.MaxGuessedRoutesPerService = 1
	process, tel := newTestProcessor(t, cfg)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for _, p := range []string{"/a", "/b"} {
		s := spans.AppendEmpty()
		s.SetKind(ptrace.SpanKindServer)
		s.SetName("GET " + p)
		s.Attributes().PutStr("http.request.method", "GET")
		s.Attributes().PutStr("url.path", p)
	}
	out := process(td).ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	route, ok := out.At(0).Attributes().Get("http.route")
	require.True(t, ok)
	assert.Equal(t, "/a", route.Str())
	_, ok = out.At(1).Attributes().Get("http.route")
	assert.False(t, ok, "an overflowed span keeps its own path and gets no {overflow} route")
	assert.Equal(t, "GET /b", out.At(1).Name())
	metadatatest.AssertEqualProcessorRoutelatencyOverflowSpans(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

// A FastAPI 404 arrives without http.route. What the processor stores must not pass the gateway's {unmatched} off
// as a route the application matched: no http.route, the gateway's own mark instead, and the span named after the
// group so that a scanner's random paths do not each become a resource in the backend.
func TestUnmatchedRequestIsMarkedNotGivenARoute(t *testing.T) {
	process, _ := newTestProcessor(t, createDefaultConfig().(*Config))
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	declared := spans.AppendEmpty() // makes the service one that declares its routes
	declared.SetKind(ptrace.SpanKindServer)
	declared.SetName("GET /items/{item_id}")
	declared.Attributes().PutStr("http.route", "/items/{item_id}")
	declared.Attributes().PutStr("http.request.method", "GET")
	missing := spans.AppendEmpty() // as opentelemetry-instrumentation-fastapi records a 404
	missing.SetKind(ptrace.SpanKindServer)
	missing.SetName("GET")
	missing.Attributes().PutStr("http.request.method", "GET")
	missing.Attributes().PutStr("url.path", "/wp-login.php")
	missing.Attributes().PutInt("http.response.status_code", 404)

	out := process(td).ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1)
	_, hasRoute := out.Attributes().Get("http.route")
	assert.False(t, hasRoute, "http.route is only ever the application's or marked as the gateway's: %v", out.Attributes().AsRaw())
	mark, ok := out.Attributes().Get("http.route.unmatched")
	require.True(t, ok)
	assert.True(t, mark.Bool())
	assert.Equal(t, "GET {unmatched}", out.Name())
	path, _ := out.Attributes().Get("url.path")
	assert.Equal(t, "/wp-login.php", path.Str(), "what the request was stays on the span")
}

func TestProcessorEmptyBatch(t *testing.T) {
	process, _ := newTestProcessor(t, createDefaultConfig().(*Config))
	assert.Equal(t, 0, process(ptrace.NewTraces()).SpanCount())
}

func TestConfigFromYAML(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	sub, err := cm.Sub("routelatency/full")
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(full))
	require.NoError(t, xconfmap.Validate(full))
	assert.Equal(t, []string{"/users/{user_id}", "/files/{path:path}"}, full.Routes.Templates)
	assert.Equal(t, 200, full.Routes.MaxRoutesPerService)
	assert.False(t, full.RenameSpans)
	assert.True(t, full.RejectInvalidUTF8)
	assert.Equal(t, "app.slow", full.Slow.Attribute)
	assert.Equal(t, 300*time.Millisecond, full.Slow.Default)
	assert.Equal(t, map[string]time.Duration{"/checkout": 2 * time.Second}, full.Slow.Routes)
	assert.Equal(t, LimitsConfig{MaxAttributes: 254, Keep: []string{"http.route", "http.request.method"},
		MaxValueLength: 4095, MaxArrayLength: 64, MaxKeyLength: 255}, full.Limits)

	bad := createDefaultConfig().(*Config)
	sub, err = cm.Sub("routelatency/invalid")
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(bad))
	err = xconfmap.Validate(bad)
	require.Error(t, err)
	for _, key := range []string{"routes.templates[0]", "routes.max_services", "slow.attribute", `slow.routes["/checkout"]`,
		"limits.max_value_length", "limits.keep"} {
		assert.Contains(t, err.Error(), key)
	}

	unknown := createDefaultConfig().(*Config)
	sub, err = cm.Sub("routelatency/unknown_key")
	require.NoError(t, err)
	err = sub.Unmarshal(unknown)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rename_span")
}

// TestRejectInvalidUTF8 refuses the whole request with a permanent error that names the string, and passes nothing
// on; with the option off, the same request goes through as it came.
func TestRejectInvalidUTF8(t *testing.T) {
	spoiled := func() ptrace.Traces {
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		good := spans.AppendEmpty()
		good.SetKind(ptrace.SpanKindServer)
		good.SetName("GET /items/{id}")
		bad := spans.AppendEmpty()
		bad.SetKind(ptrace.SpanKindServer)
		bad.SetName("GET")
		bad.Attributes().PutStr("url.path", "/items/\xff")
		return td
	}

	cfg := createDefaultConfig().(*Config)
	cfg.RejectInvalidUTF8 = true
	sink := &consumertest.TracesSink{}
	p, err := NewFactory().CreateTraces(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg, sink)
	require.NoError(t, err)
	err = p.ConsumeTraces(context.Background(), spoiled())
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "a retry cannot fix the request: %v", err)
	assert.Contains(t, err.Error(), `span "GET" attribute "url.path": "/items/\xff"`)
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "the OTLP receiver answers with this code")
	assert.Zero(t, sink.SpanCount())

	cfg.RejectInvalidUTF8 = false
	process, _ := newTestProcessor(t, cfg)
	assert.Equal(t, 2, process(spoiled()).SpanCount())
}
