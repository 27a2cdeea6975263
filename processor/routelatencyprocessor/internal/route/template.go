package route

import (
	"errors"
	"fmt"
	"strings"
)

// template is one declared route. Segments are literals or `{name}` parameters; a final `{name:path}` parameter
// (Starlette's path convertor) matches the rest of the path, slashes included.
type template struct {
	route    string
	segments []templateSegment
	tailPath bool
}

type templateSegment struct {
	literal string
	param   bool
}

func parseTemplate(s string) (template, error) {
	if !strings.HasPrefix(s, "/") {
		return template{}, fmt.Errorf("template %q must start with /", s)
	}
	t := template{route: s}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		open, closing := strings.IndexByte(p, '{'), strings.IndexByte(p, '}')
		switch {
		case open < 0 && closing < 0:
			t.segments = append(t.segments, templateSegment{literal: p})
		case open == 0 && closing == len(p)-1:
			name, convertor, _ := strings.Cut(p[1:len(p)-1], ":")
			if name == "" || strings.ContainsAny(name, "{}") {
				return template{}, fmt.Errorf("template %q: parameter %q has no name", s, p)
			}
			if convertor == "path" {
				if i != len(parts)-1 {
					return template{}, fmt.Errorf("template %q: {%s:path} must be the last segment", s, name)
				}
				t.tailPath = true
			}
			t.segments = append(t.segments, templateSegment{param: true})
		default:
			return template{}, fmt.Errorf("template %q: segment %q must be a literal or a whole {parameter}", s, p)
		}
	}
	return t, nil
}

func parseTemplates(list []string) ([]template, error) {
	out := make([]template, 0, len(list))
	var errs []error
	for _, s := range list {
		t, err := parseTemplate(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// matches walks path segment by segment without allocating.
func (t *template) matches(path string) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	rest := path[1:]
	for i, seg := range t.segments {
		last := i == len(t.segments)-1
		if last && t.tailPath {
			return rest != ""
		}
		var part string
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			part, rest = rest, ""
			if !last {
				return false
			}
		} else {
			if last {
				return false
			}
			part, rest = rest[:slash], rest[slash+1:]
		}
		if seg.param {
			if part == "" {
				return false
			}
		} else if part != seg.literal {
			return false
		}
	}
	return true
}
