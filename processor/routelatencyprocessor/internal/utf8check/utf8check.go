// Package utf8check finds the first string of a trace export that is not valid UTF-8. OTLP strings must be UTF-8,
// but the collector's decoders do not check, so such a string would travel on to a backend whose decoder may refuse
// the whole batch it arrives in, with every other client's spans.
package utf8check // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/utf8check"

import (
	"fmt"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Traces returns an error naming the first invalid string in td (where it is, and the string quoted with its bad
// bytes escaped), or nil. Valid input costs no allocation.
func Traces(td ptrace.Traces) error {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		if key, bad, found := badAttribute(rs.Resource().Attributes()); found {
			return fmt.Errorf("invalid UTF-8 in resource attribute %q: %q", key, bad)
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := ss.Scope()
			if bad, found := badString(scope.Name(), scope.Version()); found {
				return fmt.Errorf("invalid UTF-8 in scope name or version: %q", bad)
			}
			if key, bad, found := badAttribute(scope.Attributes()); found {
				return fmt.Errorf("invalid UTF-8 in scope attribute %q: %q", key, bad)
			}
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				if err := span(spans.At(k)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func span(s ptrace.Span) error {
	if !utf8.ValidString(s.Name()) {
		return fmt.Errorf("invalid UTF-8 in span name %q", s.Name())
	}
	if bad, found := badString(s.TraceState().AsRaw(), s.Status().Message()); found {
		return fmt.Errorf("invalid UTF-8 in span %q trace state or status message: %q", s.Name(), bad)
	}
	if key, bad, found := badAttribute(s.Attributes()); found {
		return fmt.Errorf("invalid UTF-8 in span %q attribute %q: %q", s.Name(), key, bad)
	}
	events := s.Events()
	for i := 0; i < events.Len(); i++ {
		e := events.At(i)
		if !utf8.ValidString(e.Name()) {
			return fmt.Errorf("invalid UTF-8 in span %q event name %q", s.Name(), e.Name())
		}
		if key, bad, found := badAttribute(e.Attributes()); found {
			return fmt.Errorf("invalid UTF-8 in span %q event %q attribute %q: %q", s.Name(), e.Name(), key, bad)
		}
	}
	links := s.Links()
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		if !utf8.ValidString(l.TraceState().AsRaw()) {
			return fmt.Errorf("invalid UTF-8 in span %q link trace state %q", s.Name(), l.TraceState().AsRaw())
		}
		if key, bad, found := badAttribute(l.Attributes()); found {
			return fmt.Errorf("invalid UTF-8 in span %q link attribute %q: %q", s.Name(), key, bad)
		}
	}
	return nil
}

func badString(values ...string) (bad string, found bool) {
	for _, v := range values {
		if !utf8.ValidString(v) {
			return v, true
		}
	}
	return "", false
}

// badAttribute returns the first attribute whose key, or string value at any depth, is not UTF-8, and that string.
func badAttribute(m pcommon.Map) (key, bad string, found bool) {
	for k, v := range m.All() {
		if !utf8.ValidString(k) {
			return k, k, true
		}
		if bad, found := badValue(v); found {
			return k, bad, true
		}
	}
	return "", "", false
}

func badValue(v pcommon.Value) (bad string, found bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if s := v.Str(); !utf8.ValidString(s) {
			return s, true
		}
	case pcommon.ValueTypeMap:
		_, bad, found := badAttribute(v.Map())
		return bad, found
	case pcommon.ValueTypeSlice:
		for _, e := range v.Slice().All() {
			if bad, found := badValue(e); found {
				return bad, true
			}
		}
	}
	return "", false
}
