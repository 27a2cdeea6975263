// Package breakdown says where a request's time went among its descendant spans in the same service: database,
// downstream HTTP, RPC, messaging, the team's own internal spans, and the request's own time. Each instant of the
// request goes to the innermost spans running at that instant, split evenly among them, so that the parts add up to
// the request's duration exactly.
package breakdown

import (
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
	// Statements counts each normalized statement's executions.
	Statements map[string]int
	// Async counts the descendants that ended after the request (clipped to it).
	Async int
	// Cycle is set when the parent links among the spans formed a cycle; the spans of the cycle were left out.
	Cycle bool
}

type event struct {
	at    int64
	start bool
	span  int // index into the tree's spans
}

// Compute splits the request's time among the descendants of request in spans (any order; spans not below request,
// or in a parent cycle, are ignored). A descendant is clipped to the request: what it ran before the request started
// (clock skew) or after it ended (async work) does not count.
func Compute(request Span, spans []Span) Split {
	out := Split{Parts: map[Part]int64{}, Calls: map[Part]int{}, Statements: map[string]int{}}
	if request.End <= request.Start {
		return out
	}
	// The tree below the request: children by parent, walked from the request so that a cycle is never entered.
	children := map[uint64][]int{}
	for i := range spans {
		if spans[i].ID != request.ID {
			children[spans[i].Parent] = append(children[spans[i].Parent], i)
		}
	}
	// nodes[0] is the request; parent[i] is the node index of node i's parent.
	nodes := []Span{request}
	parent := []int{-1}
	seen := map[uint64]bool{request.ID: true}
	for n := 0; n < len(nodes); n++ {
		for _, i := range children[nodes[n].ID] {
			s := spans[i]
			if seen[s.ID] {
				out.Cycle = true // a duplicate id or a cycle back into the tree
				continue
			}
			seen[s.ID] = true
			nodes = append(nodes, s)
			parent = append(parent, n)
		}
	}
	events := make([]event, 0, 2*len(nodes))
	for i, s := range nodes {
		start, end := max(s.Start, request.Start), min(s.End, request.End)
		if i > 0 {
			out.Calls[s.Part]++
			if s.Statement != "" {
				out.Statements[s.Statement]++
			}
			if s.End > request.End {
				out.Async++
			}
		}
		if end <= start {
			continue
		}
		events = append(events, event{start, true, i}, event{end, false, i})
	}
	// Ends before starts at the same instant, so that back-to-back spans never overlap.
	slices.SortFunc(events, func(a, b event) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		if a.start == b.start {
			return 0
		}
		if !a.start {
			return -1
		}
		return 1
	})
	// runningBelow[i] counts the running descendants of node i; innermost are the running nodes with none.
	runningBelow := make([]int, len(nodes))
	running := make([]bool, len(nodes))
	innermost := map[int]bool{}
	var last int64
	for _, e := range events {
		if len(innermost) > 0 && e.at > last {
			share := (e.at - last) / int64(len(innermost))
			rest := (e.at - last) - share*int64(len(innermost))
			for n := range innermost {
				out.Parts[partOf(nodes, n)] += share
			}
			if rest > 0 { // whole nanoseconds: the remainder goes to the request's own time to keep the sum exact
				out.Parts[Part{Category: Self}] += rest
			}
		}
		last = e.at
		n := e.span
		if e.start {
			running[n] = true
			if runningBelow[n] == 0 {
				innermost[n] = true
			}
			for a := parent[n]; a >= 0; a = parent[a] {
				runningBelow[a]++
				delete(innermost, a)
			}
		} else {
			running[n] = false
			delete(innermost, n)
			for a := parent[n]; a >= 0; a = parent[a] {
				runningBelow[a]--
				if runningBelow[a] == 0 && running[a] {
					innermost[a] = true
				}
			}
		}
	}
	return out
}

func partOf(nodes []Span, n int) Part {
	if n == 0 {
		return Part{Category: Self}
	}
	return nodes[n].Part
}
