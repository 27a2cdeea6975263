package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/confmap"
	"gopkg.in/yaml.v3"
)

// WithoutRouteLatency merges configuration files with the collector's own confmap (maps merged key by key, any
// other value replaced by the later file's) and removes this project's component from the result: every receiver, processor,
// exporter and connector named routelatency or routelatency/..., the pipelines' references to them, and the
// pipelines left without receivers or exporters. What is left is the same configuration as a team running stock
// contrib would have it, hardening included. It returns the path of the one merged file (in a test's temporary
// folder); ${env:...} references are kept for the collector to resolve.
func WithoutRouteLatency(t testing.TB, configs ...string) string {
	t.Helper()
	conf := confmap.New()
	for _, path := range configs {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := conf.Merge(confmap.NewFromStringMap(doc)); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	merged := conf.ToStringMap()
	isOurs := func(id string) bool { return id == "routelatency" || strings.HasPrefix(id, "routelatency/") }
	for _, kind := range []string{"receivers", "processors", "exporters", "connectors"} {
		if m, ok := merged[kind].(map[string]any); ok {
			for id := range m {
				if isOurs(id) {
					delete(m, id)
				}
			}
		}
	}
	service, _ := merged["service"].(map[string]any)
	pipelines, _ := service["pipelines"].(map[string]any)
	if len(pipelines) == 0 {
		t.Fatalf("%v: no service.pipelines", configs)
	}
	for name, p := range pipelines {
		pipeline, _ := p.(map[string]any)
		for _, kind := range []string{"receivers", "processors", "exporters"} {
			list, _ := pipeline[kind].([]any)
			kept := []any{}
			for _, id := range list {
				if s, _ := id.(string); !isOurs(s) {
					kept = append(kept, id)
				}
			}
			pipeline[kind] = kept
		}
		if len(pipeline["receivers"].([]any)) == 0 || len(pipeline["exporters"].([]any)) == 0 {
			delete(pipelines, name)
		}
	}
	out, err := yaml.Marshal(merged)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "without-routelatency.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
