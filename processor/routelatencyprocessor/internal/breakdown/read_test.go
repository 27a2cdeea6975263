package breakdown

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func span(kind ptrace.SpanKind, name string, attrs map[string]any) ptrace.Span {
	s := ptrace.NewSpan()
	s.SetKind(kind)
	s.SetName(name)
	_ = s.Attributes().FromRaw(attrs)
	return s
}

func TestReadClassifiesByConvention(t *testing.T) {
	for name, c := range map[string]struct {
		span      ptrace.Span
		part      Part
		statement string
	}{
		"SQLAlchemy, stable conventions": {span(ptrace.SpanKindClient, "SELECT shop", map[string]any{"db.system.name": "sqlite", "db.namespace": "shop", "db.query.text": "SELECT * FROM items WHERE id = ?"}),
			Part{DB, "sqlite shop"}, "SELECT * FROM items WHERE id = ?"},
		"SQLAlchemy, old conventions": {span(ptrace.SpanKindClient, "SELECT shop", map[string]any{"db.system": "sqlite", "db.name": "shop", "db.statement": "SELECT * FROM items WHERE id = 42 AND name = 'it''s'"}),
			Part{DB, "sqlite shop"}, "SELECT * FROM items WHERE id = ? AND name = ?"},
		"query summary first": {span(ptrace.SpanKindClient, "q", map[string]any{"db.system.name": "postgresql", "db.query.summary": "SELECT items", "db.query.text": "SELECT 1"}),
			Part{DB, "postgresql"}, "SELECT items"},
		"operation and collection": {span(ptrace.SpanKindClient, "find", map[string]any{"db.system.name": "mongodb", "db.operation.name": "find", "db.collection.name": "orders"}),
			Part{DB, "mongodb"}, "find orders"},
		"HTTP client with server.address": {span(ptrace.SpanKindClient, "GET", map[string]any{"http.request.method": "GET", "server.address": "payments", "server.port": "8080"}),
			Part{HTTP, "payments:8080"}, ""},
		"Python requests: http.url only": {span(ptrace.SpanKindClient, "GET", map[string]any{"http.method": "GET", "http.url": "http://user:pw@inventory.internal:9000/stock/42?x=1"}),
			Part{HTTP, "inventory.internal:9000"}, ""},
		"otelhttp: server.port as an int": {span(ptrace.SpanKindClient, "GET", map[string]any{"http.request.method": "GET", "server.address": "127.0.0.1", "server.port": 8001}),
			Part{HTTP, "127.0.0.1:8001"}, ""},
		"peer.service": {span(ptrace.SpanKindClient, "GET", map[string]any{"http.request.method": "GET", "peer.service": "billing"}),
			Part{HTTP, "billing"}, ""},
		"rpc":       {span(ptrace.SpanKindClient, "Check", map[string]any{"rpc.system": "grpc", "rpc.service": "stock.Stock"}), Part{RPC, "grpc stock.Stock"}, ""},
		"messaging": {span(ptrace.SpanKindProducer, "publish", map[string]any{"messaging.system": "kafka", "messaging.destination.name": "orders"}), Part{Messaging, "kafka orders"}, ""},
		"internal":  {span(ptrace.SpanKindInternal, "build_report", nil), Part{Internal, "build_report"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			got := NewReader().Read(c.span)
			assert.Equal(t, c.part, got.Part)
			assert.Equal(t, c.statement, got.Statement)
		})
	}
}

func TestNormalizeKeepsNamesAndStripsLiterals(t *testing.T) {
	assert.Equal(t, "SELECT t1.col_2 FROM t1 WHERE x IN (?, ?) AND y = ?", string(appendNormalized(nil, "SELECT t1.col_2\n  FROM t1 WHERE x IN (1, 2.5)   AND y = 'a b'")))
}
