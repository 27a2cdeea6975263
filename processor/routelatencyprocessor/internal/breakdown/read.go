package breakdown

import (
	"encoding/binary"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MaxTargetLength and MaxStatementLength bound what one span's record keeps; an exception keeps at most
// maxExceptionsPerSpan events of MaxExceptionLength bytes per field (a stack trace's top frame is near its start,
// or its end for Python: the last bytes are kept of a Python traceback).
const (
	MaxTargetLength      = 128
	MaxStatementLength   = 256
	MaxExceptionLength   = 16 << 10
	MaxExceptionsPerSpan = 4
	// maxInterned bounds the reader's table of targets and statements; past it the table starts afresh.
	maxInterned = 10_000
)

// Reader copies descendant spans into records. Targets and statements repeat from span to span (one database,
// a few statements per route), so it keeps one owned copy of each: a span costs no allocation once its strings
// were seen. Not safe for concurrent use.
type Reader struct {
	interned map[string]string
	// recent are the last strings intern returned: consecutive spans mostly repeat them (a trace's queries name
	// one database, often one statement), and comparing is cheaper than hashing.
	recent [4]string
	next   int
	buf    []byte
}

// NewReader returns a reader with an empty table.
func NewReader() *Reader { return &Reader{interned: map[string]string{}} }

// attr names the attributes Read looks at.
type attr uint8

const (
	dbSystemName attr = iota
	dbSystem
	dbNamespace
	dbName
	dbQuerySummary
	dbQueryText
	dbStatement
	dbOperationName
	dbOperation
	dbCollectionName
	dbSQLTable
	rpcSystem
	rpcService
	messagingSystem
	messagingDestinationName
	messagingDestination
	httpRequestMethod
	httpMethod
	serverAddress
	netPeerName
	serverPort
	peerService
	urlFull
	httpURL
	attrCount
)

// attrOf is a switch, not a map: Go compiles it to a search on length and bytes, cheaper than hashing each key.
func attrOf(k string) (attr, bool) {
	switch k {
	case "db.system.name":
		return dbSystemName, true
	case "db.system":
		return dbSystem, true
	case "db.namespace":
		return dbNamespace, true
	case "db.name":
		return dbName, true
	case "db.query.summary":
		return dbQuerySummary, true
	case "db.query.text":
		return dbQueryText, true
	case "db.statement":
		return dbStatement, true
	case "db.operation.name":
		return dbOperationName, true
	case "db.operation":
		return dbOperation, true
	case "db.collection.name":
		return dbCollectionName, true
	case "db.sql.table":
		return dbSQLTable, true
	case "rpc.system":
		return rpcSystem, true
	case "rpc.service":
		return rpcService, true
	case "messaging.system":
		return messagingSystem, true
	case "messaging.destination.name":
		return messagingDestinationName, true
	case "messaging.destination":
		return messagingDestination, true
	case "http.request.method":
		return httpRequestMethod, true
	case "http.method":
		return httpMethod, true
	case "server.address":
		return serverAddress, true
	case "net.peer.name":
		return netPeerName, true
	case "server.port":
		return serverPort, true
	case "peer.service":
		return peerService, true
	case "url.full":
		return urlFull, true
	case "http.url":
		return httpURL, true
	}
	return 0, false
}

// Read copies out of a descendant span what its breakdown needs: ids, times, what its time counts as and, for a
// database span, its normalized statement. It walks the attributes once; current semantic-convention keys win
// over the older ones.
func (r *Reader) Read(span ptrace.Span) Span {
	s := Span{ID: ID(span.SpanID()), Parent: ID(span.ParentSpanID()), Start: int64(span.StartTimestamp()), End: int64(span.EndTimestamp())}
	var a attrSet
	span.Attributes().Range(func(k string, v pcommon.Value) bool {
		if i, ok := attrOf(k); ok && a.present&(1<<i) == 0 { // the first of a repeated key, as Map.Get finds
			a.values[i], a.present = v, a.present|1<<i
		}
		return true
	})
	if a.present == 0 {
		r.buf = append(r.buf[:0], span.Name()...)
		s.Part = Part{Internal, r.intern(r.buf)}
		return s
	}
	if system := a.get(r, dbSystemName, dbSystem); system != "" {
		s.Part = Part{DB, r.join(system, a.get(r, dbNamespace, dbName))}
		if a.present&statementAttrs != 0 {
			s.Statement = r.statement(a.get(r, dbQuerySummary, none), a.get(r, dbQueryText, dbStatement),
				a.get(r, dbOperationName, dbOperation), a.get(r, dbCollectionName, dbSQLTable))
		}
		return s
	}
	if system := a.get(r, rpcSystem, none); system != "" {
		s.Part = Part{RPC, r.join(system, a.get(r, rpcService, none))}
		return s
	}
	if system := a.get(r, messagingSystem, none); system != "" {
		s.Part = Part{Messaging, r.join(system, a.get(r, messagingDestinationName, messagingDestination))}
		return s
	}
	if span.Kind() == ptrace.SpanKindClient && a.get(r, httpRequestMethod, httpMethod) != "" {
		s.Part = Part{HTTP, r.downstream(a.get(r, serverAddress, netPeerName), a.get(r, serverPort, none),
			a.get(r, peerService, none), a.get(r, urlFull, httpURL))}
		return s
	}
	r.buf = append(r.buf[:0], span.Name()...)
	s.Part = Part{Internal, r.intern(r.buf)}
	return s
}

// none stands for no second attribute in attrSet.get.
const none = attrCount

// statementAttrs are the attributes a database span's statement is read from.
const statementAttrs = 1<<dbQuerySummary | 1<<dbQueryText | 1<<dbStatement | 1<<dbOperationName | 1<<dbOperation |
	1<<dbCollectionName | 1<<dbSQLTable

// attrSet is what Read found among the attributes it looks at.
type attrSet struct {
	values  [attrCount]pcommon.Value
	present uint32
}

// get returns the value of the first of x and y that holds a non-empty string or an integer (otelhttp writes
// server.port as an int), "" when neither does. Small enough to inline the common case: neither present.
func (a *attrSet) get(r *Reader, x, y attr) string {
	if a.present&(1<<x|1<<y) == 0 {
		return ""
	}
	return a.value(r, x, y)
}

func (a *attrSet) value(r *Reader, x, y attr) string {
	for _, i := range [2]attr{x, y} {
		if a.present&(1<<i) == 0 {
			continue
		}
		switch v := a.values[i]; v.Type() {
		case pcommon.ValueTypeStr:
			if v.Str() != "" {
				return v.Str()
			}
		case pcommon.ValueTypeInt:
			r.buf = strconv.AppendInt(r.buf[:0], v.Int(), 10)
			return r.intern(r.buf)
		}
	}
	return ""
}

// ID is a span id as an integer (0 for an empty id), the key of the tree.
func ID(id pcommon.SpanID) uint64 { return binary.BigEndian.Uint64(id[:]) }

// intern returns the owned copy of b (cut to MaxStatementLength), making it if needed.
func (r *Reader) intern(b []byte) string {
	b = cut(b, MaxStatementLength)
	for _, s := range r.recent {
		if s == string(b) {
			return s
		}
	}
	s, ok := r.interned[string(b)] // no allocation: the map is searched by the bytes
	if !ok {
		if len(r.interned) >= maxInterned {
			clear(r.interned)
		}
		// A cut may have split the last character: the copy replaces what is not UTF-8.
		s = strings.ToValidUTF8(string(b), "\uFFFD")
		r.interned[s] = s
	}
	r.recent[r.next] = s
	r.next = (r.next + 1) % len(r.recent)
	return s
}

func (r *Reader) join(system, name string) string {
	r.buf = append(r.buf[:0], system...)
	if name != "" {
		r.buf = append(append(r.buf, ' '), name...)
	}
	return r.intern(cut(r.buf, MaxTargetLength))
}

// downstream names an HTTP call's target: server.address (with server.port), else peer.service, else the host of
// the URL (Python's requests instrumentation sets only http.url).
func (r *Reader) downstream(address, port, peer, url string) string {
	switch {
	case address != "" && port != "":
		r.buf = append(append(append(r.buf[:0], address...), ':'), port...)
	case address != "":
		r.buf = append(r.buf[:0], address...)
	case peer != "":
		r.buf = append(r.buf[:0], peer...)
	default:
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
		r.buf = append(r.buf[:0], rest...)
	}
	return r.intern(cut(r.buf, MaxTargetLength))
}

// statement is what N+1 detection and the top statements compare: the query summary, else the query text with its
// literals replaced by ?, else operation and collection.
func (r *Reader) statement(summary, text, operation, collection string) string {
	switch {
	case summary != "":
		r.buf = append(r.buf[:0], summary...)
		return r.intern(r.buf)
	case text != "":
		r.buf = appendNormalized(r.buf[:0], text)
		return r.intern(r.buf)
	case operation != "":
		return r.join(operation, collection)
	}
	return ""
}

func cut(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// appendNormalized appends the query with its string and number literals replaced by ?, whitespace collapsed and
// its length bounded, so that one statement run with different values reads the same (parameterised queries
// already do).
func appendNormalized(b []byte, query string) []byte {
	space := false
	for i := 0; i < len(query) && len(b) < MaxStatementLength; {
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
			b = append(b, '?')
			i = j + 1
			space = false
		case c >= '0' && c <= '9' && !identifierBefore(query, i):
			for i < len(query) && (query[i] >= '0' && query[i] <= '9' || query[i] == '.') {
				i++
			}
			b = append(b, '?')
			space = false
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if !space && len(b) > 0 {
				b = append(b, ' ')
			}
			space = true
			i++
		default:
			b = append(b, c)
			space = false
			i++
		}
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// identifierBefore reports whether the digit at i continues a name (t1, col_2), which keeps it.
func identifierBefore(s string, i int) bool {
	if i == 0 {
		return false
	}
	c := s[i-1]
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Attribute keys of the exception events and the fingerprint override.
const (
	EventException     = "exception"
	AttrExceptionType  = "exception.type"
	AttrExceptionMsg   = "exception.message"
	AttrExceptionStack = "exception.stacktrace"
	AttrFingerprint    = "error.fingerprint"
)

// ReadExceptions copies up to n exception events of a span, each field cut to length bytes (a Python traceback
// keeps its end, where its innermost frames are).
func ReadExceptions(span ptrace.Span, n, length int) []Exception {
	var out []Exception
	fingerprint := ""
	if v, ok := span.Attributes().Get(AttrFingerprint); ok {
		fingerprint = strings.Clone(cutString(v.AsString(), length, false))
	}
	events := span.Events()
	for i := 0; i < events.Len() && len(out) < n; i++ {
		e := events.At(i)
		if e.Name() != EventException {
			continue
		}
		ex := Exception{Fingerprint: fingerprint}
		e.Attributes().Range(func(k string, v pcommon.Value) bool {
			switch k {
			case AttrExceptionType:
				ex.Type = strings.Clone(cutString(v.AsString(), length, false))
			case AttrExceptionMsg:
				ex.Message = strings.Clone(cutString(v.AsString(), length, false))
			case AttrExceptionStack:
				st := v.AsString()
				ex.Stacktrace = strings.Clone(cutString(st, length, strings.HasPrefix(st, "Traceback")))
			}
			return true
		})
		out = append(out, ex)
	}
	return out
}

func cutString(s string, n int, keepEnd bool) string {
	if len(s) <= n {
		return s
	}
	if keepEnd {
		return s[len(s)-n:]
	}
	return s[:n]
}
