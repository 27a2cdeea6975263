package errorgroups

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

var (
	t0       = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	checkout = RouteKey{"shop", "production", "POST", "/checkout"}
)

const pythonTrace = `Traceback (most recent call last):
  File "/usr/local/lib/python3.12/site-packages/starlette/routing.py", line 74, in app
    response = await func(request)
  File "/app/shop/checkout.py", line 42, in checkout
    charge(order)
  File "/app/shop/payments.py", line 17, in charge
    raise PaymentDeclined(f"card {card} declined")
  File "/usr/local/lib/python3.12/json/__init__.py", line 346, in loads
    return _default_decoder.decode(s)
shop.errors.PaymentDeclined: card 4242 declined`

// A chained traceback: the cause first, then the exception raised while handling it.
const pythonChained = `Traceback (most recent call last):
  File "/app/shop/db.py", line 9, in fetch
    raise KeyError(order_id)
KeyError: 42

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/shop/orders.py", line 30, in get_order
    raise OrderMissing(order_id) from None
shop.errors.OrderMissing: 42`

const goTrace = `goroutine 37 [running]:
runtime/debug.Stack()
	/usr/local/go/src/runtime/debug/stack.go:26 +0x5e
go.opentelemetry.io/otel/sdk/trace.recordStackTrace(...)
	/root/go/pkg/mod/go.opentelemetry.io/otel/sdk@v1.40.0/trace/span.go:571
go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).RecordError(0xc000230000, {0x9e5a40, 0xc00021c1e0}, {0xc00023dcf8, 0x1, 0x1})
	/root/go/pkg/mod/go.opentelemetry.io/otel/sdk@v1.40.0/trace/span.go:553 +0x4f0
main.charge(...)
	/src/examples/shopapi/main.go:140 +0x8d
main.routes.func5({0xa0a6b0, 0xc000222000}, 0xc0001f2000)
	/src/examples/shopapi/main.go:151 +0x1b1
net/http.HandlerFunc.ServeHTTP(0xc00021c1a0, {0xa0a6b0, 0xc000222000}, 0xc0001f2000)
	/usr/local/go/src/net/http/server.go:2294 +0x29`

func TestTopFrameIsTheInnermostApplicationFrame(t *testing.T) {
	assert.Equal(t, "payments.py in charge", TopFrame(pythonTrace), "not the json module below it, not starlette above")
	assert.Equal(t, "orders.py in get_order", TopFrame(pythonChained), "the exception raised, not its cause")
	assert.Equal(t, "main.charge", TopFrame(goTrace), "not debug.Stack, the SDK or net/http")
	assert.Equal(t, "github.com/acme/shop/internal/pay.(*Client).Charge", TopFrame("goroutine 1 [running]:\nruntime/debug.Stack()\n\t/x.go:1\ngithub.com/acme/shop/internal/pay.(*Client).Charge(0x1)\n\t/y.go:2\n"))
	assert.Empty(t, TopFrame("no frames at all"))
}

func TestMessagesThatDifferInVariablePartsShareAShape(t *testing.T) {
	for _, pair := range [][2]string{
		{"order 1234 not found", "order 98 not found"},
		{"user 'alice' has no cart", `user "bob" has no cart`},
		{"session 3f2a9c1e-1111-4abc-9def-0123456789ab expired", "session 0b0c0d0e-2222-4abc-9def-aaaaaaaaaaaa expired"},
		{"object 0x7f3a2b1c freed twice", "object 0xdeadbeef freed twice"},
		{"cannot open /var/data/a1/x.csv", "cannot open /tmp/y.csv"},
		{"timeout after 2.5s", "timeout after 30s"},
		{"token a3f9e21b0c is stale", "token 77be0912ffd is stale"},
		{"request deadbeefcafe failed", "request 0123456789ab failed"},
	} {
		assert.Equal(t, Normalize(pair[0]), Normalize(pair[1]), "%q vs %q", pair[0], pair[1])
	}
	assert.NotEqual(t, Normalize("order not found"), Normalize("cart not found"))
}

func newGroups() *Groups {
	m, _ := NewMasker([]string{`[\w.+-]+@[\w-]+\.[\w.]+`, `(?i)bearer\s+\S+`})
	return New(Limits{PerRoute: 20, PerService: 200}, m, 0)
}

func TestGroupsSplitByTypeAndFrameAndFollowTheFingerprint(t *testing.T) {
	g := newGroups()
	declined := Exception{Type: "PaymentDeclined", Message: "card 4242 declined", Stacktrace: pythonTrace, Failed: true}
	g.Record(checkout, "1.0", declined, pcommon.TraceID{1}, 1, t0)
	declined.Message = "card 1881 declined"
	g.Record(checkout, "1.0", declined, pcommon.TraceID{2}, 3, t0.Add(time.Second)) // a sampled span: 3 requests
	elsewhere := declined
	elsewhere.Stacktrace = strings.Replace(pythonTrace, "payments.py", "refunds.py", 1)
	g.Record(checkout, "1.0", elsewhere, pcommon.TraceID{3}, 1, t0)
	g.Record(checkout, "1.0", Exception{Type: "TimeoutError", Message: "upstream", Failed: false}, pcommon.TraceID{4}, 1, t0)
	g.Record(checkout, "1.0", Exception{Type: "A", Message: "x", Fingerprint: "payments-down"}, pcommon.TraceID{5}, 1, t0)
	g.Record(checkout, "1.0", Exception{Type: "B", Message: "y", Fingerprint: "payments-down"}, pcommon.TraceID{6}, 1, t0)

	views := g.List(func(RouteKey) bool { return true })
	require.Len(t, views, 4, "%+v", views)
	top := views[0]
	assert.Equal(t, "PaymentDeclined", top.Type)
	assert.Equal(t, uint64(4), top.Count)
	assert.Equal(t, uint64(4), top.Failed)
	assert.Equal(t, "payments.py in charge", top.TopFrame)
	assert.Equal(t, "card 4242 declined", top.ExampleMessage, "an example as sent")
	assert.Equal(t, []string{pcommon.TraceID{1}.String(), pcommon.TraceID{2}.String()}, top.ExampleTraceIDs)
	assert.InDelta(t, 4.0/8, top.Share, 1e-9)
	byType := map[string]View{}
	for _, v := range views {
		byType[v.Fingerprint] = v
	}
	assert.Equal(t, uint64(2), byType["fp:payments-down"].Count, "error.fingerprint overrides type and message")
	var timeout View
	for _, v := range views {
		if v.Type == "TimeoutError" {
			timeout = v
		}
	}
	assert.Equal(t, uint64(1), timeout.Handled, "an exception on a request that did not fail was handled")
}

func TestSecretsAreMaskedBeforeAnythingIsKept(t *testing.T) {
	g := newGroups()
	g.Record(checkout, "1.0", Exception{Type: "AuthError", Message: "bad Bearer abc.def for alice@example.com",
		Stacktrace: "  File \"/app/a.py\", line 1, in f\n    token='Bearer xyz' user=bob@example.org"}, pcommon.TraceID{1}, 1, t0)
	v := g.List(func(RouteKey) bool { return true })[0]
	for _, s := range []string{v.ExampleMessage, v.ExampleStacktrace, v.Shape, v.Fingerprint} {
		assert.NotContains(t, s, "alice")
		assert.NotContains(t, s, "bob@")
		assert.NotContains(t, s, "abc.def")
		assert.NotContains(t, s, "xyz")
	}
	assert.Contains(t, v.ExampleMessage, "<masked>")
}

// Bad input: a 1 MiB stack trace, a message that is not UTF-8, 100,000 messages each with a random id, no type,
// more groups than the bounds: memory bounded, one group each where they belong, counted.
func TestBadInputStaysBoundedAndGrouped(t *testing.T) {
	g := newGroups()
	huge := strings.Repeat("  File \"/app/deep.py\", line 1, in recurse\n", 25_000) // ~1 MiB
	g.Record(checkout, "1.0", Exception{Type: "RecursionError", Message: "deep", Stacktrace: huge}, pcommon.TraceID{}, 1, t0)
	g.Record(checkout, "1.0", Exception{Type: "ValueError", Message: "bad \xff\xfe byte"}, pcommon.TraceID{}, 1, t0)
	for i := range 100_000 {
		g.Record(checkout, "1.0", Exception{Type: "KeyError", Message: fmt.Sprintf("no order %d (request %012x)", i*7919, uint64(i)*0x9e3779b97f4a7c15>>16)}, pcommon.TraceID{}, 1, t0)
	}
	g.Record(checkout, "1.0", Exception{Message: "typeless"}, pcommon.TraceID{}, 1, t0)
	views := g.List(func(RouteKey) bool { return true })
	require.Len(t, views, 4, "%+v", views)
	assert.Equal(t, uint64(100_000), views[0].Count, "random ids fold into one group")
	for _, v := range views {
		assert.LessOrEqual(t, len(v.ExampleStacktrace), MaxStacktraceLength)
		assert.True(t, strings.ToValidUTF8(v.ExampleMessage, "") == v.ExampleMessage, "valid UTF-8: %q", v.ExampleMessage)
		if v.Type == "RecursionError" {
			assert.Equal(t, "deep.py in recurse", v.TopFrame)
		}
	}
	assert.Contains(t, []string{views[1].Type, views[2].Type, views[3].Type}, NoType)
	c := g.Drain()
	assert.Equal(t, int64(100_003), c.Recorded)
	assert.Equal(t, int64(1), c.Truncated)

	for i := range 50 { // distinct types: past 20 a route's groups fold into {other}, counts kept
		g.Record(RouteKey{"shop", "production", "GET", "/x"}, "1.0", Exception{Type: fmt.Sprintf("E%c", 'A'+i)}, pcommon.TraceID{}, 1, t0)
	}
	x := g.List(func(r RouteKey) bool { return r.Route == "/x" })
	assert.Len(t, x, 20)
	total := uint64(0)
	for _, v := range x {
		total += v.Count
	}
	assert.Equal(t, uint64(50), total)
	assert.Equal(t, int64(31), g.Drain().Folded)
}

func TestGroupsNewInTheLatestVersion(t *testing.T) {
	g := newGroups()
	g.Record(checkout, "1.0", Exception{Type: "Old"}, pcommon.TraceID{}, 1, t0)
	g.Record(checkout, "1.1", Exception{Type: "Old"}, pcommon.TraceID{}, 1, t0.Add(time.Hour))
	g.Record(checkout, "1.1", Exception{Type: "Fresh"}, pcommon.TraceID{}, 1, t0.Add(time.Hour))
	for _, v := range g.List(func(RouteKey) bool { return true }) {
		assert.Equal(t, v.Type == "Fresh", v.New, v.Type)
		if v.Type == "Old" {
			assert.Equal(t, "1.0", v.FirstVersion)
		}
	}
}
