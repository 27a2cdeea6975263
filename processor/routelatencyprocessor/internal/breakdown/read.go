package breakdown

import (
	"encoding/binary"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MaxTargetLength and MaxStatementLength bound what one span's record keeps.
const (
	MaxTargetLength    = 128
	MaxStatementLength = 256
)

// Read copies out of a descendant span what its breakdown needs: ids, times, what its time counts as and, for a
// database span, its normalized statement. Current semantic-convention keys are read before the older ones.
func Read(span ptrace.Span) Span {
	s := Span{ID: ID(span.SpanID()), Parent: ID(span.ParentSpanID()), Start: int64(span.StartTimestamp()), End: int64(span.EndTimestamp())}
	attrs := span.Attributes()
	get := func(keys ...string) string {
		for _, k := range keys {
			// AsString: some instrumentations write server.port as an int (otelhttp does).
			if v, ok := attrs.Get(k); ok && v.AsString() != "" {
				return v.AsString()
			}
		}
		return ""
	}
	switch {
	case get("db.system.name", "db.system") != "":
		s.Part = Part{DB, join(get("db.system.name", "db.system"), get("db.namespace", "db.name"))}
		s.Statement = statement(get("db.query.summary"), get("db.query.text", "db.statement"), get("db.operation.name", "db.operation"), get("db.collection.name", "db.sql.table"))
	case get("rpc.system") != "":
		s.Part = Part{RPC, join(get("rpc.system"), get("rpc.service"))}
	case get("messaging.system") != "":
		s.Part = Part{Messaging, join(get("messaging.system"), get("messaging.destination.name", "messaging.destination"))}
	case span.Kind() == ptrace.SpanKindClient && get("http.request.method", "http.method") != "":
		s.Part = Part{HTTP, downstream(get("server.address", "net.peer.name"), get("server.port"), get("peer.service"), get("url.full", "http.url"))}
	default:
		s.Part = Part{Internal, clip(span.Name(), MaxTargetLength)}
	}
	return s
}

// ID is a span id as an integer (0 for an empty id), the key of the tree.
func ID(id pcommon.SpanID) uint64 { return binary.BigEndian.Uint64(id[:]) }

func join(system, name string) string {
	if name == "" {
		return clip(system, MaxTargetLength)
	}
	return clip(system+" "+name, MaxTargetLength)
}

// downstream names an HTTP call's target: server.address, else peer.service, else the host of the URL (Python's
// requests instrumentation sets only http.url).
func downstream(address, port, peer, url string) string {
	switch {
	case address != "" && port != "":
		return clip(address+":"+port, MaxTargetLength)
	case address != "":
		return clip(address, MaxTargetLength)
	case peer != "":
		return clip(peer, MaxTargetLength)
	}
	_, rest, ok := strings.Cut(url, "://")
	if !ok {
		return "{unknown}"
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 { // user:password@host
		rest = rest[i+1:]
	}
	return clip(rest, MaxTargetLength)
}

// statement is what N+1 detection and the top statements compare: the query summary, else the query text with its
// literals replaced by ?, else operation and collection.
func statement(summary, text, operation, collection string) string {
	switch {
	case summary != "":
		return clip(summary, MaxStatementLength)
	case text != "":
		return Normalize(text)
	case operation != "":
		return join(operation, collection)
	}
	return ""
}

// Normalize replaces a query's string and number literals with ?, collapses whitespace and bounds its length, so that
// one statement run with different values reads the same (parameterised queries are already so).
func Normalize(query string) string {
	var b strings.Builder
	b.Grow(min(len(query), MaxStatementLength))
	space := false
	for i := 0; i < len(query) && b.Len() < MaxStatementLength; {
		c := query[i]
		switch {
		case c == '\'':
			// A quoted string ('it''s' included): one ?.
			j := i + 1
			for j < len(query) {
				if query[j] == '\'' {
					if j+1 < len(query) && query[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			b.WriteByte('?')
			i = j + 1
			space = false
		case c >= '0' && c <= '9' && !identifierBefore(query, i):
			for i < len(query) && (query[i] >= '0' && query[i] <= '9' || query[i] == '.') {
				i++
			}
			b.WriteByte('?')
			space = false
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			i++
		default:
			b.WriteByte(c)
			space = false
			i++
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// identifierBefore reports whether the digit at i continues a name (t1, col_2), which keeps it.
func identifierBefore(s string, i int) bool {
	if i == 0 {
		return false
	}
	c := s[i-1]
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// clip bounds a string copied out of span memory (cut at a byte; the caller's strings are UTF-8 and the cut may
// only split the last character, which strings.ToValidUTF8 then drops).
func clip(s string, n int) string {
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return strings.Clone(s)
}
