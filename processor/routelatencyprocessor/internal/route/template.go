package route

import (
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

// parseTemplate reads FastAPI syntax. With partialParams (OpenAPI documents), a segment such as `{name}.json` is
// taken as a parameter segment; in `routes.templates` it is an error.
func parseTemplate(s string, partialParams bool) (template, error) {
	if !strings.HasPrefix(s, "/") {
		return template{}, fmt.Errorf("template %q must start with /", s)
	}
	t := template{route: s}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		open, closing := strings.IndexByte(p, '{'), strings.LastIndexByte(p, '}')
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
		case partialParams && open >= 0 && closing > open:
			t.segments = append(t.segments, templateSegment{param: true})
		default:
			return template{}, fmt.Errorf("template %q: segment %q must be a literal or a whole {parameter}", s, p)
		}
	}
	return t, nil
}

// templateSet matches a path against many templates in one walk of a segment tree: its cost grows with the path's
// depth, not with the number of templates (an OpenAPI document may have thousands). When several templates match,
// the one added first wins, as in Starlette's routing.
type templateSet struct {
	root   templateNode
	routes map[string]struct{} // every template, for "is this route documented"
	size   int
}

type templateNode struct {
	literals map[string]*templateNode
	param    *templateNode
	// end and tail hold the priority (order added, from 1) and route of a template ending at this node, exactly or
	// with a {name:path} parameter; 0 for none.
	end, tail           int
	endRoute, tailRoute string
}

func newTemplateSet() *templateSet {
	return &templateSet{routes: map[string]struct{}{}}
}

// add keeps the first of two identical templates.
func (s *templateSet) add(t template) {
	s.size++
	s.routes[t.route] = struct{}{}
	n := &s.root
	for i, seg := range t.segments {
		if i == len(t.segments)-1 && t.tailPath {
			if n.tail == 0 {
				n.tail, n.tailRoute = s.size, t.route
			}
			return
		}
		switch {
		case seg.param:
			if n.param == nil {
				n.param = &templateNode{}
			}
			n = n.param
		default:
			if n.literals == nil {
				n.literals = map[string]*templateNode{}
			}
			child, ok := n.literals[seg.literal]
			if !ok {
				child = &templateNode{}
				n.literals[seg.literal] = child
			}
			n = child
		}
	}
	if n.end == 0 {
		n.end, n.endRoute = s.size, t.route
	}
}

func (s *templateSet) len() int {
	if s == nil {
		return 0
	}
	return s.size
}

// match returns the first-added template matching path, without allocating.
func (s *templateSet) match(path string) (string, bool) {
	if s == nil || s.size == 0 || len(path) == 0 || path[0] != '/' {
		return "", false
	}
	best := templateMatch{priority: int(^uint(0) >> 1)}
	s.root.match(path[1:], &best)
	return best.route, best.route != ""
}

// documents reports whether route is one of the set's templates.
func (s *templateSet) documents(route string) bool {
	_, ok := s.routes[route]
	return ok
}

type templateMatch struct {
	priority int
	route    string
}

// match is at a node whose segments are consumed up to a '/'; rest is what follows that slash. Each node is visited
// at most once per call, so a walk costs at most the size of the tree.
func (n *templateNode) match(rest string, best *templateMatch) {
	if n.tail != 0 && rest != "" && n.tail < best.priority {
		best.priority, best.route = n.tail, n.tailRoute
	}
	seg, tail, more := strings.Cut(rest, "/")
	if child := n.literals[seg]; child != nil {
		child.matchEnd(tail, more, best)
	}
	if n.param != nil && seg != "" {
		n.param.matchEnd(tail, more, best)
	}
}

func (n *templateNode) matchEnd(tail string, more bool, best *templateMatch) {
	if !more {
		if n.end != 0 && n.end < best.priority {
			best.priority, best.route = n.end, n.endRoute
		}
		return
	}
	n.match(tail, best)
}
