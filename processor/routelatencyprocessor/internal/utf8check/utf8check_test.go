package utf8check

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/spanmix"
)

const invalid = "/items/\xc3\x28" // a lead byte followed by ASCII

func TestTracesNamesTheInvalidString(t *testing.T) {
	cases := map[string]struct {
		spoil func(rs ptrace.ResourceSpans, span ptrace.Span)
		want  string
	}{
		"resource attribute": {func(rs ptrace.ResourceSpans, _ ptrace.Span) {
			rs.Resource().Attributes().PutStr("service.name", invalid)
		},
			`resource attribute "service.name": "/items/\xc3("`},
		"scope name": {func(rs ptrace.ResourceSpans, _ ptrace.Span) { rs.ScopeSpans().At(0).Scope().SetName(invalid) },
			`scope name or version: "/items/\xc3("`},
		"span name":     {func(_ ptrace.ResourceSpans, s ptrace.Span) { s.SetName("GET " + invalid) }, `span name "GET /items/\xc3("`},
		"attribute key": {func(_ ptrace.ResourceSpans, s ptrace.Span) { s.Attributes().PutStr(invalid, "x") }, `attribute "/items/\xc3(": "/items/\xc3("`},
		"attribute value": {func(_ ptrace.ResourceSpans, s ptrace.Span) { s.Attributes().PutStr("url.path", invalid) },
			`span "GET /items/{id}" attribute "url.path": "/items/\xc3("`},
		"nested in a slice of maps": {func(_ ptrace.ResourceSpans, s ptrace.Span) {
			s.Attributes().PutEmptySlice("list").AppendEmpty().SetEmptyMap().PutStr("k", invalid)
		}, `attribute "list": "/items/\xc3("`},
		"status message": {func(_ ptrace.ResourceSpans, s ptrace.Span) { s.Status().SetMessage(invalid) }, `status message: "/items/\xc3("`},
		"event attribute": {func(_ ptrace.ResourceSpans, s ptrace.Span) {
			s.Events().AppendEmpty().Attributes().PutStr("exception.message", invalid)
		}, `attribute "exception.message": "/items/\xc3("`},
		"link attribute": {func(_ ptrace.ResourceSpans, s ptrace.Span) { s.Links().AppendEmpty().Attributes().PutStr("k", invalid) },
			`link attribute "k": "/items/\xc3("`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			td, rs, span := validTraces()
			c.spoil(rs, span)
			err := Traces(td)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestTracesAcceptsValidUTF8(t *testing.T) {
	td, _, span := validTraces()
	span.Attributes().PutStr("greeting", "grüße, 你好, 🙂")
	assert.NoError(t, Traces(td))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = Traces(td) }))
}

func validTraces() (ptrace.Traces, ptrace.ResourceSpans, ptrace.Span) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("otelhttp")
	span := ss.Spans().AppendEmpty()
	span.SetName("GET /items/{id}")
	span.Attributes().PutStr("url.path", "/items/42")
	return td, rs, span
}

// BenchmarkTraces is the check's cost on the realistic mix, per span (children included): what
// reject_invalid_utf8 adds to the processor.
func BenchmarkTraces(b *testing.B) {
	td := spanmix.Traces(1, 1000, 10)
	b.ReportAllocs()
	for b.Loop() {
		if err := Traces(td); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*td.SpanCount()), "ns/span")
}
