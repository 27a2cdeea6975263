package route

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FuzzResolve feeds arbitrary span names, paths and routes to the resolver: it must never panic, and every route it
// returns is valid UTF-8, at most max_path_length bytes, and counted within the cap.
func FuzzResolve(f *testing.F) {
	for _, seed := range [][3]string{
		{"GET /items/8812", "/items/8812", ""},
		{"GET", "/users/3f2b8c1e-9a4d-4e2f-8b1a-2c3d4e5f6a7b/orders?x=1#y", ""},
		{"POST /checkout", "", "/checkout"},
		{"GET /files/{path:path}", "/files/a/b/c", ""},
		{"HTTP GET", "//double//slash//", ""},
		{"GET /caf\xe9", "/caf\xe9/\xff\xfe", "/bad\xff"},
		{"", "", ""},
		{"GET " + strings.Repeat("/1", 200), strings.Repeat("/x", 5000), ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, name, path, httpRoute string) {
		cfg := DefaultConfig()
		cfg.MaxPathLength = 64
		cfg.MaxRoutesPerService = 4
		cfg.MaxGuessedRoutesPerService = 3
		cfg.Templates = []string{"/users/{user_id}", "/files/{p:path}"}
		r, err := NewResolver(cfg)
		if err != nil {
			t.Fatal(err)
		}
		span := ptrace.NewSpan()
		span.SetKind(ptrace.SpanKindServer)
		span.SetName(name)
		span.Attributes().PutStr("url.path", path)
		if httpRoute != "" {
			span.Attributes().PutStr("http.route", httpRoute)
		}
		for range 2 {
			res := resolve(r, "svc", span)
			if !utf8.ValidString(res.Route) {
				t.Fatalf("route %q is not valid UTF-8", res.Route)
			}
			if len(res.Route) > cfg.MaxPathLength {
				t.Fatalf("route of %d bytes", len(res.Route))
			}
			_ = NamedAfterRawRequest(name, ReadRequest(span).Method)
		}
		if r.Tracked() > cfg.MaxRoutesPerService+cfg.MaxGuessedRoutesPerService {
			t.Fatalf("%d routes tracked over a cap of %d", r.Tracked(), cfg.MaxRoutesPerService+cfg.MaxGuessedRoutesPerService)
		}
	})
}
