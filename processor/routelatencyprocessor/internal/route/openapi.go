package route

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// OpenAPIDocument is one entry of `routes.openapi`: an OpenAPI 3.x document whose paths are routes the service
// declares (FastAPI serves one at /openapi.json).
type OpenAPIDocument struct {
	// File is a JSON or YAML file.
	File string `mapstructure:"file"`
	// Service scopes the document to one service.name; empty applies it to every service.
	Service string `mapstructure:"service"`
}

// maxOpenAPIBytes bounds what is read of one document: the largest public specs are a few MiB.
const maxOpenAPIBytes = 64 << 20

// loadOpenAPIPaths returns the document's paths in the order they are written (FastAPI writes them in the order the
// routes are declared, which is also the order Starlette matches them).
func loadOpenAPIPaths(file string) ([]template, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxOpenAPIBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxOpenAPIBytes {
		return nil, fmt.Errorf("larger than %d MiB", maxOpenAPIBytes>>20)
	}
	return parseOpenAPIPaths(data)
}

func parseOpenAPIPaths(data []byte) ([]template, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty document")
		}
		return nil, fmt.Errorf("not JSON or YAML: %w", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not an OpenAPI document: the top level is not an object")
	}
	top := doc.Content[0]
	version := mappingValue(top, "openapi")
	if version == nil || version.Kind != yaml.ScalarNode || !strings.HasPrefix(version.Value, "3.") {
		return nil, errors.New(`not an OpenAPI 3.x document: no "openapi": "3.x" field`)
	}
	paths := mappingValue(top, "paths")
	if paths == nil || paths.Kind != yaml.MappingNode {
		return nil, errors.New(`"paths" is missing or not an object`)
	}
	out := make([]template, 0, len(paths.Content)/2)
	var errs []error
	for i := 0; i+1 < len(paths.Content); i += 2 {
		key := paths.Content[i].Value
		t, err := parseTemplate(key, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("paths: %w", err))
			continue
		}
		out = append(out, t)
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return out, errors.Join(errs...)
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
