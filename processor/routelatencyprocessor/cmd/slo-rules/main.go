// Command slo-rules writes, from the service level objectives in the routelatency connectors of a collector
// configuration, the Prometheus rule file (error ratios, Sloth's meta rules, multiwindow burn-rate alerts) and the
// Datadog SLO and monitor definitions. With -check it compares instead of writing, and fails on a difference.
//
//	slo-rules -config config.yaml -config environments/slos.yaml -prometheus rules.yaml -datadog slos.json
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"
)

type configs []string

func (c *configs) String() string     { return strings.Join(*c, ",") }
func (c *configs) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	var files configs
	flag.Var(&files, "config", "a collector configuration file; repeat to merge overlays, as the collector does")
	prometheus := flag.String("prometheus", "", "where to write the Prometheus rule file")
	datadog := flag.String("datadog", "", "where to write the Datadog definitions (JSON)")
	check := flag.Bool("check", false, "compare with the files instead of writing them")
	flag.Parse()
	if err := run(files, *prometheus, *datadog, *check); err != nil {
		fmt.Fprintln(os.Stderr, "slo-rules:", err)
		os.Exit(1)
	}
}

func run(files []string, prometheus, datadog string, check bool) error {
	if len(files) == 0 {
		return errors.New("no -config given")
	}
	objectives, err := load(files)
	if err != nil {
		return err
	}
	source := strings.Join(files, " + ")
	if prometheus != "" {
		out, err := slo.Rules(objectives).YAML(source)
		if err != nil {
			return err
		}
		if err := write(prometheus, out, check); err != nil {
			return err
		}
	}
	if datadog != "" {
		defs, skipped := slo.DatadogDefinitions(objectives)
		for _, name := range skipped {
			fmt.Fprintf(os.Stderr, "slo-rules: %s: no Datadog SLO (Datadog has 7, 30 and 90 day windows only)\n", name)
		}
		out, err := defs.JSON()
		if err != nil {
			return err
		}
		if err := write(datadog, out, check); err != nil {
			return err
		}
	}
	return nil
}

func write(path string, out []byte, check bool) error {
	if !check {
		return os.WriteFile(path, out, 0o644)
	}
	have, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(have, out) {
		return fmt.Errorf("%s is not what the objectives give: run make slo-rules", path)
	}
	return nil
}

// load merges the files as the collector does (later ones over earlier ones) and reads the slos of every
// routelatency connector; one objective may appear in several connectors (the gateway's local and Datadog ones),
// identically.
func load(files []string) ([]slo.Objective, error) {
	merged := confmap.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var raw map[string]any
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if err := merged.Merge(confmap.NewFromStringMap(raw)); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	connectors, _ := merged.Get("connectors").(map[string]any)
	ids := make([]string, 0, len(connectors))
	for id := range connectors {
		if id == "routelatency" || strings.HasPrefix(id, "routelatency/") {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []slo.Objective
	byName := map[string]string{}
	for _, id := range ids {
		var cfg struct {
			SLOs []slo.Objective `mapstructure:"slos"`
		}
		sub, err := merged.Sub("connectors::" + id)
		if err != nil {
			return nil, err
		}
		if err := sub.Unmarshal(&cfg, confmap.WithIgnoreUnused()); err != nil {
			return nil, fmt.Errorf("connectors::%s::slos: %w", id, err)
		}
		if err := slo.Validate("connectors::"+id+"::slos", cfg.SLOs); err != nil {
			return nil, err
		}
		for _, o := range cfg.SLOs {
			o = o.WithDefaults()
			seen := fmt.Sprintf("%+v", o)
			if prev, ok := byName[o.Name]; ok {
				if prev != seen {
					return nil, fmt.Errorf("connectors::%s::slos: %q differs from the objective of that name in another connector", id, o.Name)
				}
				continue
			}
			byName[o.Name] = seen
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no slos in any routelatency connector of %s", strings.Join(files, ", "))
	}
	return out, nil
}
