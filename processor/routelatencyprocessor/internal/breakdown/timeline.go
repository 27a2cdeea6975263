// Package breakdown says where a request's time went among its descendant spans in the same service: database,
// downstream HTTP, RPC, messaging, the team's own internal spans, and the request's own time. Each instant of the
// request goes to the innermost spans running at that instant, split evenly among them, so that the parts add up to
// the request's duration exactly.
package breakdown

import (
	"cmp"
	"slices"
)

// Span is one span of a request's tree as the breakdown needs it: small, copied out of the span, never the span.
type Span struct {
	ID, Parent uint64 // span ids as integers; Parent 0 for none
	Start, End int64  // Unix nanoseconds
	Part       Part
	// Statement is a database span's normalized statement ("" for others), for N+1 detection and top statements.
	Statement string
}

// Part is what a span's own time counts as.
type Part struct {
	Category Category
	// Target is the database (system and namespace), the downstream address, the RPC or messaging system and
	// destination, or the internal span's name.
	Target string
}

// Category of a span's time.
type Category uint8

const (
	// Self is the request's own time: no descendant running.
	Self Category = iota
	DB
	HTTP
	RPC
	Messaging
	Internal
)

var categoryNames = [...]string{"self", "db", "http", "rpc", "messaging", "internal"}

func (c Category) String() string { return categoryNames[c] }

// Split is a request's breakdown: the time of each part, in nanoseconds, adding up to the request's duration.
type Split struct {
	Parts map[Part]int64
	// Calls counts the spans of each part (self excluded).
	Calls map[Part]int
	// Statements counts each normalized statement's executions, StatementNanos their own time.
	Statements     map[string]int
	StatementNanos map[string]int64
	// Async counts the descendants that ended after the request (clipped to it).
	Async int
	// Cycle is set when the parent links among the spans formed a cycle; the spans of the cycle were left out.
	Cycle bool
}

type event struct {
	at    int64
	start bool
	node  int32
}

// Computer computes splits, reusing its buffers from one request to the next. Not safe for concurrent use.
type Computer struct {
	byParent     []int32 // indices into spans, sorted by parent id
	nodes        []int32 // the request's tree in walk order: -1 for the request, else an index into spans
	parent       []int32 // node index of each node's parent
	events       []event
	runningBelow []int32 // running descendants of each node
	running      []bool
	innermost    []int32 // running nodes without a running descendant
	slot         []int32 // each node's position in innermost, -1 when not in it
	own          []int64 // each node's own time
	out          Split   // its maps are cleared and filled by each Compute
}

// Compute is Computer.Compute with fresh buffers: its split is the caller's to keep.
func Compute(request Span, spans []Span) Split {
	var c Computer
	return c.Compute(request, spans)
}

// Compute splits the request's time among the descendants of request in spans (any order; spans not below the
// request, or in a parent cycle, are left out). A descendant is clipped to the request: what it ran before the
// request started (clock skew) or after it ended (async work) does not count. The split's maps are the Computer's:
// valid until its next Compute.
func (c *Computer) Compute(request Span, spans []Span) Split {
	if c.out.Parts == nil {
		c.out = Split{Parts: map[Part]int64{}, Calls: map[Part]int{}, Statements: map[string]int{}, StatementNanos: map[string]int64{}}
	}
	out := Split{Parts: c.out.Parts, Calls: c.out.Calls, Statements: c.out.Statements, StatementNanos: c.out.StatementNanos}
	clear(out.Parts)
	clear(out.Calls)
	clear(out.Statements)
	clear(out.StatementNanos)
	if request.End <= request.Start {
		return out
	}
	c.walk(request, spans, &out)
	c.sweep(request, spans)
	for n, i := range c.nodes {
		if c.own[n] == 0 && i >= 0 {
			continue
		}
		part := Part{Category: Self}
		if i >= 0 {
			part = spans[i].Part
		}
		out.Parts[part] += c.own[n]
	}
	for n, i := range c.nodes[1:] {
		s := &spans[i]
		out.Calls[s.Part]++
		if s.Statement != "" {
			out.Statements[s.Statement]++
			out.StatementNanos[s.Statement] += c.own[n+1]
		}
		if s.End > request.End {
			out.Async++
		}
	}
	return out
}

// walk lays out the tree below the request, breadth first from it, so that a cycle is never entered; a span id met
// twice (a duplicate, or a cycle back into the tree) is left out and flagged.
func (c *Computer) walk(request Span, spans []Span, out *Split) {
	c.byParent = c.byParent[:0]
	for i := range spans {
		if spans[i].ID != request.ID {
			c.byParent = append(c.byParent, int32(i))
		}
	}
	slices.SortFunc(c.byParent, func(a, b int32) int { return cmp.Compare(spans[a].Parent, spans[b].Parent) })
	c.nodes = append(c.nodes[:0], -1)
	c.parent = append(c.parent[:0], -1)
	var seen map[uint64]bool // only for trees too big for a linear check
	if len(spans) > 64 {
		seen = map[uint64]bool{request.ID: true}
	}
	idOf := func(n int) uint64 {
		if c.nodes[n] < 0 {
			return request.ID
		}
		return spans[c.nodes[n]].ID
	}
	for n := 0; n < len(c.nodes); n++ {
		id := idOf(n)
		first, _ := slices.BinarySearchFunc(c.byParent, id, func(i int32, id uint64) int { return cmp.Compare(spans[i].Parent, id) })
		for _, i := range c.byParent[first:] {
			if spans[i].Parent != id {
				break
			}
			if c.visited(spans[i].ID, seen, idOf) {
				out.Cycle = true
				continue
			}
			c.nodes = append(c.nodes, i)
			c.parent = append(c.parent, int32(n))
		}
	}
}

func (c *Computer) visited(id uint64, seen map[uint64]bool, idOf func(int) uint64) bool {
	if seen != nil {
		if seen[id] {
			return true
		}
		seen[id] = true
		return false
	}
	for n := range c.nodes {
		if idOf(n) == id {
			return true
		}
	}
	return false
}

// sweep gives each instant of the request to the innermost nodes running then, split evenly, into c.own.
func (c *Computer) sweep(request Span, spans []Span) {
	n := len(c.nodes)
	c.events = c.events[:0]
	for node, i := range c.nodes {
		start, end := request.Start, request.End
		if i >= 0 {
			start, end = max(spans[i].Start, request.Start), min(spans[i].End, request.End)
		}
		if end > start {
			c.events = append(c.events, event{start, true, int32(node)}, event{end, false, int32(node)})
		}
	}
	// Ends before starts at the same instant, so that back-to-back spans never overlap.
	slices.SortFunc(c.events, func(a, b event) int {
		switch {
		case a.at != b.at:
			return cmp.Compare(a.at, b.at)
		case a.start == b.start:
			return 0
		case !a.start:
			return -1
		}
		return 1
	})
	c.runningBelow = resize(c.runningBelow, n)
	c.running = resize(c.running, n)
	c.slot = resize(c.slot, n)
	c.own = resize(c.own, n)
	for i := range n {
		c.runningBelow[i], c.running[i], c.slot[i], c.own[i] = 0, false, -1, 0
	}
	c.innermost = c.innermost[:0]
	var last int64
	for _, e := range c.events {
		if k := int64(len(c.innermost)); k > 0 && e.at > last {
			share := (e.at - last) / k
			for _, node := range c.innermost {
				c.own[node] += share
			}
			c.own[0] += (e.at - last) - share*k // whole nanoseconds: the remainder keeps the sum exact
		}
		last = e.at
		node := e.node
		if e.start {
			c.running[node] = true
			if c.runningBelow[node] == 0 {
				c.enter(node)
			}
			for a := c.parent[node]; a >= 0; a = c.parent[a] {
				c.runningBelow[a]++
				c.leave(a)
			}
			continue
		}
		c.running[node] = false
		c.leave(node)
		for a := c.parent[node]; a >= 0; a = c.parent[a] {
			if c.runningBelow[a]--; c.runningBelow[a] == 0 && c.running[a] {
				c.enter(a)
			}
		}
	}
}

func (c *Computer) enter(node int32) {
	if c.slot[node] < 0 {
		c.slot[node] = int32(len(c.innermost))
		c.innermost = append(c.innermost, node)
	}
}

func (c *Computer) leave(node int32) {
	i := c.slot[node]
	if i < 0 {
		return
	}
	last := c.innermost[len(c.innermost)-1]
	c.innermost[i], c.slot[last] = last, i
	c.innermost = c.innermost[:len(c.innermost)-1]
	c.slot[node] = -1
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
