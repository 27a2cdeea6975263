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

// RequestSpan is a request span as its breakdown needs it: its id and times.
type RequestSpan struct {
	ID         uint64
	Start, End int64 // Unix nanoseconds
}

// Exception is one exception event of a descendant span (owned copies, bounded), for the route's error groups.
type Exception struct {
	Type, Message, Stacktrace, Fingerprint string
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
	// Parts are in the order first met, self first; a part whose calls all ran outside the request has Nanos 0.
	Parts []PartTime
	// Statements are the normalized database statements run, with their own time.
	Statements []StatementTime
	// Async counts the descendants that ended after the request (clipped to it).
	Async int
	// Exceptions are the exception events of the request's descendants (filled by Store.Sweep).
	Exceptions []Exception
	// Cycle is set when the parent links among the spans formed a cycle; the spans of the cycle were left out.
	Cycle bool
}

// PartTime is one part of a split: its own time and its spans (0 for self).
type PartTime struct {
	Part  Part
	Nanos int64
	Calls int
}

// StatementTime is one statement of a split: its executions and their own time.
type StatementTime struct {
	Statement string
	Nanos     int64
	Calls     int
}

// Part returns the time of a part (0 when absent).
func (s Split) Part(p Part) PartTime {
	for _, pt := range s.Parts {
		if pt.Part == p {
			return pt
		}
	}
	return PartTime{Part: p}
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
	// parts and statements back each Compute's split; the indexes find them among many (see linearSearch).
	parts          []PartTime
	statements     []StatementTime
	exceptions     []Exception
	partIndex      map[Part]int
	statementIndex map[string]int
}

// Compute is Computer.Compute with fresh buffers: its split is the caller's to keep.
func Compute(request RequestSpan, spans []Span) Split {
	var c Computer
	return c.Compute(request, spans)
}

// Compute splits the request's time among the descendants of request in spans (any order; spans not below the
// request, or in a parent cycle, are left out). A descendant is clipped to the request: what it ran before the
// request started (clock skew) or after it ended (async work) does not count. The split's slices are the
// Computer's: valid until its next Compute.
func (c *Computer) Compute(request RequestSpan, spans []Span) Split {
	out := Split{Parts: c.parts[:0], Statements: c.statements[:0], Exceptions: c.exceptions[:0]}
	defer func() { c.parts, c.statements, c.exceptions = out.Parts[:0], out.Statements[:0], out.Exceptions[:0] }()
	if request.End <= request.Start {
		return out
	}
	if len(spans) == 0 { // a request without descendants (a single-span trace, common under load): all its own time
		out.Parts = append(out.Parts, PartTime{Part: Part{Category: Self}, Nanos: request.End - request.Start})
		return out
	}
	c.walk(request, spans, &out)
	c.sweep(request, spans)
	out.Parts = append(out.Parts, PartTime{Part: Part{Category: Self}, Nanos: c.own[0]})
	for n, i := range c.nodes[1:] {
		s := &spans[i]
		p := c.partOf(&out, s.Part)
		p.Nanos += c.own[n+1]
		p.Calls++
		if s.Statement != "" {
			st := c.statementOf(&out, s.Statement)
			st.Nanos += c.own[n+1]
			st.Calls++
		}
		if s.End > request.End {
			out.Async++
		}
	}
	return out
}

// walked reports whether the span id is in the last Compute's tree below the request.
func (c *Computer) walked(id uint64, spans []Span) bool {
	for _, i := range c.nodes[1:] {
		if spans[i].ID == id {
			return true
		}
	}
	return false
}

// linearSearch is how many parts (or statements) a split searches one by one before it indexes them: a request
// touches a few, but a tree of thousands of distinct names must not cost their square.
const linearSearch = 16

func (c *Computer) partOf(out *Split, p Part) *PartTime {
	i := find(&out.Parts, &c.partIndex, p, func(pt *PartTime) Part { return pt.Part })
	if i == len(out.Parts) {
		out.Parts = append(out.Parts, PartTime{Part: p})
	}
	return &out.Parts[i]
}

func (c *Computer) statementOf(out *Split, st string) *StatementTime {
	i := find(&out.Statements, &c.statementIndex, st, func(s *StatementTime) string { return s.Statement })
	if i == len(out.Statements) {
		out.Statements = append(out.Statements, StatementTime{Statement: st})
	}
	return &out.Statements[i]
}

// find returns the position of k in items, len(items) when absent (the caller appends it there). Past
// linearSearch items it keeps index, built once per split when the items outgrow the linear search.
func find[T any, K comparable](items *[]T, index *map[K]int, k K, key func(*T) K) int {
	s := *items
	if len(s) > linearSearch {
		i, ok := (*index)[k]
		if !ok {
			i = len(s)
			(*index)[k] = i
		}
		return i
	}
	for i := range s {
		if key(&s[i]) == k {
			return i
		}
	}
	if len(s) == linearSearch { // k makes one more than the linear search: index them all
		if *index == nil {
			*index = map[K]int{}
		}
		clear(*index)
		for i := range s {
			(*index)[key(&s[i])] = i
		}
		(*index)[k] = len(s)
	}
	return len(s)
}

// smallTree is the size up to which the walk scans every span for each node's children (and each found span for a
// repeat) instead of sorting by parent: cheaper for the few spans of a typical request.
const smallTree = 32

// walk lays out the tree below the request, breadth first from it, so that a cycle is never entered; a span id met
// twice (a duplicate, or a cycle back into the tree) is left out and flagged.
func (c *Computer) walk(request RequestSpan, spans []Span, out *Split) {
	c.nodes = append(c.nodes[:0], -1)
	c.parent = append(c.parent[:0], -1)
	small := len(spans) <= smallTree
	var seen map[uint64]bool
	if !small {
		c.byParent = c.byParent[:0]
		for i := range spans {
			c.byParent = append(c.byParent, int32(i))
		}
		slices.SortFunc(c.byParent, func(a, b int32) int { return cmp.Compare(spans[a].Parent, spans[b].Parent) })
		seen = map[uint64]bool{request.ID: true}
	}
	if small && flat(request.ID, spans) { // the common tree: every span a child of the request, none deeper
		for i := range spans {
			c.add(int32(i), 0, spans, request.ID, nil, out)
		}
		return
	}
	for n := 0; n < len(c.nodes); n++ {
		id := request.ID
		if i := c.nodes[n]; i >= 0 {
			id = spans[i].ID
		}
		if small {
			for i := range spans {
				if spans[i].Parent == id {
					c.add(int32(i), n, spans, request.ID, seen, out)
				}
			}
			continue
		}
		first, _ := slices.BinarySearchFunc(c.byParent, id, func(i int32, id uint64) int { return cmp.Compare(spans[i].Parent, id) })
		for _, i := range c.byParent[first:] {
			if spans[i].Parent != id {
				break
			}
			c.add(i, n, spans, request.ID, seen, out)
		}
	}
}

// flat reports whether every span's parent is the request.
func flat(requestID uint64, spans []Span) bool {
	for i := range spans {
		if spans[i].Parent != requestID {
			return false
		}
	}
	return true
}

// add puts span i in the tree below node n, unless its id is in the tree already.
func (c *Computer) add(i int32, n int, spans []Span, requestID uint64, seen map[uint64]bool, out *Split) {
	id := spans[i].ID
	if seen != nil {
		if seen[id] {
			out.Cycle = true
			return
		}
		seen[id] = true
	} else {
		if id == requestID {
			out.Cycle = true
			return
		}
		for _, node := range c.nodes[1:] {
			if spans[node].ID == id {
				out.Cycle = true
				return
			}
		}
	}
	c.nodes = append(c.nodes, i)
	c.parent = append(c.parent, int32(n))
}

// sweep gives each instant of the request to the innermost nodes running then, split evenly, into c.own.
func (c *Computer) sweep(request RequestSpan, spans []Span) {
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
	sortEvents(c.events)
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

// before orders events in time, ends before starts at the same instant, so that back-to-back spans never overlap.
func before(a, b event) bool { return a.at < b.at || a.at == b.at && !a.start && b.start }

// sortEvents sorts by insertion up to a few dozen events (a typical request's: cheaper than a general sort's calls
// through a comparison function), and with slices.SortFunc beyond.
func sortEvents(events []event) {
	if len(events) > 48 {
		slices.SortFunc(events, func(a, b event) int {
			switch {
			case before(a, b):
				return -1
			case before(b, a):
				return 1
			}
			return 0
		})
		return
	}
	for i := 1; i < len(events); i++ {
		e := events[i]
		j := i
		for ; j > 0 && before(e, events[j-1]); j-- {
			events[j] = events[j-1]
		}
		events[j] = e
	}
}
