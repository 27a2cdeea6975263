package routelatencyprocessor

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/metadatatest"
)

func TestLimitsKeepTheNamedAttributesFirstThenTheOthersInOrder(t *testing.T) {
	l := LimitsConfig{MaxAttributes: 4, Keep: []string{"http.route", "http.request.method"}}
	m := pcommon.NewMap()
	for i := range 10 {
		m.PutStr(fmt.Sprintf("app.%d", i), "v")
	}
	m.PutStr("http.route", "/items/{id}")
	m.PutStr("http.request.method", "GET")
	dropped, truncated := l.apply(m)
	assert.Equal(t, int64(8), dropped)
	assert.Zero(t, truncated)
	assert.Equal(t, map[string]any{"app.0": "v", "app.1": "v", "http.route": "/items/{id}", "http.request.method": "GET"}, m.AsRaw())

	// Under the limit nothing moves.
	small := pcommon.NewMap()
	small.PutStr("a", "b")
	dropped, _ = l.apply(small)
	assert.Zero(t, dropped)
	assert.Equal(t, 1, small.Len())
}

func TestLimitsCutValuesAtACharacterAndArraysAndDropLongNames(t *testing.T) {
	l := LimitsConfig{MaxValueLength: 4095, MaxArrayLength: 64, MaxKeyLength: 255}
	m := pcommon.NewMap()
	m.PutStr("ascii", strings.Repeat("a", 5000))
	m.PutStr("accented", strings.Repeat("é", 3000)) // 2 bytes each: 4095 falls inside a character
	m.PutStr("short", "ok")
	arr := m.PutEmptySlice("array")
	for i := range 100 {
		arr.AppendEmpty().SetInt(int64(i))
	}
	m.PutStr(strings.Repeat("k", 256), "a name too long for New Relic")
	m.PutStr(strings.Repeat("k", 255), "the longest name kept")

	dropped, truncated := l.apply(m)
	assert.Equal(t, int64(1), dropped)
	assert.Equal(t, int64(3), truncated)
	ascii, _ := m.Get("ascii")
	assert.Len(t, ascii.Str(), 4095)
	accented, _ := m.Get("accented")
	assert.Len(t, accented.Str(), 4094, "cut before the character that 4095 bytes would split")
	assert.True(t, utf8.ValidString(accented.Str()))
	array, _ := m.Get("array")
	assert.Equal(t, 64, array.Slice().Len())
	assert.Equal(t, int64(63), array.Slice().At(63).Int())
	_, kept := m.Get(strings.Repeat("k", 255))
	assert.True(t, kept)
	short, _ := m.Get("short")
	assert.Equal(t, "ok", short.Str())
}

// Through the processor: spans, span events and resources are bounded, the route is read before anything is
// dropped, and what was dropped or cut is counted by action.
func TestProcessorAppliesLimitsEverywhereAndCountsThem(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Limits = LimitsConfig{MaxAttributes: 3, Keep: []string{"http.route", "http.request.method"}, MaxValueLength: 12}
	process, tel := newTestProcessor(t, cfg)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	for i := range 5 {
		rs.Resource().Attributes().PutStr(fmt.Sprintf("host.tag.%d", i), "x")
	}
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetKind(ptrace.SpanKindServer)
	span.SetName("GET /items/8812")
	for i := range 5 {
		span.Attributes().PutStr(fmt.Sprintf("app.%d", i), "a longer value")
	}
	span.Attributes().PutStr("http.request.method", "GET")
	span.Attributes().PutStr("url.path", "/items/8812")
	event := span.Events().AppendEmpty()
	event.SetName("exception")
	event.Attributes().PutStr("exception.message", "a message longer than ten bytes")

	out := process(td).ResourceSpans().At(0)
	got := out.ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, "GET /items/{id}", got.Name(), "the route was resolved from url.path before limits dropped it")
	assert.Equal(t, map[string]any{"app.0": "a longer val", "http.request.method": "GET", "http.route": "/items/{id}"}, got.Attributes().AsRaw())
	assert.Equal(t, 3, out.Resource().Attributes().Len())
	msg, _ := got.Events().At(0).Attributes().Get("exception.message")
	assert.Equal(t, "a message lo", msg.Str())

	// Resource: 6 -> 3 (3 dropped). Span: 5 app + method + url.path + http.route + http.route.guessed = 9 -> 3
	// (6 dropped), the kept app value cut once. Event: one value cut.
	metadatatest.AssertEqualProcessorRoutelatencyLimitedAttributes(t, tel, []metricdata.DataPoint[int64]{
		{Value: 9, Attributes: attribute.NewSet(attribute.String("action", "dropped"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("action", "truncated"))},
	}, metricdatatest.IgnoreTimestamp())
}
