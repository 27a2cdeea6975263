package dashboard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"
)

// The history persists as key-value records (a collector storage extension's client): one record per slice of
// each ring, overwritten in place as the ring turns (so the records never outgrow the rings: no compaction of
// ours to run), and an index of the routes. A flush writes only the slices it changed. The breakdown, kept for
// the finest tier only, is not persisted.
const (
	// IndexKey holds the routes and the tiers the slices were written for.
	IndexKey = "history/index"
	// UnreadableIndexKey is where an index that does not decode is moved aside.
	UnreadableIndexKey = "history/unreadable-index"
	formatVersion      = 1
	// maxRecordLength bounds what a record may claim to hold: a garbled length never allocates more.
	maxRecordLength = 1 << 20
)

// ErrUnreadable wraps every decoding failure of a persisted history.
var ErrUnreadable = errors.New("unreadable dashboard history")

func sliceKey(route uint64, tier, index int) string {
	return fmt.Sprintf("history/%d/%d/%d", route, tier, index)
}

// Change is one record to write (Value not nil) or delete (Value nil).
type Change struct {
	Key   string
	Value []byte
}

// Changes returns the records that changed since the last call: the slices recorded into, the index when routes
// came or went, and deletions for the slices of routes that left. Their states are marked clean.
func (h *History) Changes() []Change {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Change
	for _, id := range h.removed {
		for t, tr := range h.tiers {
			for n := range tr.slices {
				out = append(out, Change{Key: sliceKey(id, t, n)})
			}
		}
	}
	h.removed = h.removed[:0]
	for _, rh := range h.routes {
		for t, ring := range rh.rings {
			for n, ts := range ring {
				if ts != nil && ts.dirty {
					out = append(out, Change{Key: sliceKey(rh.id, t, n), Value: encodeSlice(ts)})
					ts.dirty = false
				}
			}
		}
	}
	if h.indexDirty {
		out = append(out, Change{Key: IndexKey, Value: h.encodeIndex()})
		h.indexDirty = false
	}
	return out
}

// Restore reads a persisted history into an empty one through get (nil, nil for a missing record) and reports how
// many slices it read. Slices of tiers whose width or length changed since they were written are left out. On an
// error wrapping ErrUnreadable the history stays empty.
func (h *History) Restore(get func(key string) ([]byte, error)) (int, error) {
	raw, err := get(IndexKey)
	if err != nil || raw == nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	d := decoder{b: raw}
	if v := d.u64(); v != formatVersion && d.err == nil {
		return 0, fmt.Errorf("%w: index format %d, this build reads %d", ErrUnreadable, v, formatVersion)
	}
	since, updated := d.time(), d.time()
	var tiers []tier
	for range d.count() {
		tiers = append(tiers, tier{slice: time.Duration(d.i64()), slices: int(d.u64())})
	}
	type indexed struct {
		id  uint64
		key RouteKey
	}
	var routes []indexed
	for range d.count() {
		routes = append(routes, indexed{d.u64(), RouteKey{d.str(), d.str(), d.str(), d.str()}})
	}
	if d.err != nil {
		return 0, fmt.Errorf("%w: index: %v", ErrUnreadable, d.err)
	}
	read := 0
	for _, r := range routes {
		if len(h.routes) >= h.maxRoutes {
			break
		}
		rh := h.newRoute(r.key, r.id)
		for t, tr := range h.tiers {
			if t >= len(tiers) || tiers[t] != tr {
				continue
			}
			for n := range tr.slices {
				raw, err := get(sliceKey(r.id, t, n))
				if err != nil {
					h.reset()
					return 0, err
				}
				if raw == nil {
					continue
				}
				ts, err := decodeSlice(raw)
				if err != nil {
					h.reset()
					return 0, fmt.Errorf("%w: %s: %v", ErrUnreadable, sliceKey(r.id, t, n), err)
				}
				if int(ts.start.UnixNano()/int64(tr.slice))%tr.slices != n || !ts.start.Equal(ts.start.Truncate(tr.slice)) {
					continue // not a slice of this position: written under another configuration
				}
				rh.rings[t][n] = ts
				read++
			}
		}
	}
	h.since, h.updated = since, updated
	return read, nil
}

// reset empties the history (the caller holds mu).
func (h *History) reset() {
	h.routes = map[RouteKey]*routeHistory{}
	h.since, h.updated, h.indexDirty, h.removed = time.Time{}, time.Time{}, false, nil
}

func (h *History) encodeIndex() []byte {
	var e encoder
	e.u64(formatVersion)
	e.time(h.since)
	e.time(h.updated)
	e.u64(uint64(len(h.tiers)))
	for _, t := range h.tiers {
		e.i64(int64(t.slice))
		e.u64(uint64(t.slices))
	}
	e.u64(uint64(len(h.routes)))
	for k, rh := range h.routes {
		e.u64(rh.id)
		e.str(k.Service)
		e.str(k.Environment)
		e.str(k.Method)
		e.str(k.Route)
	}
	return e.b
}

func encodeSlice(ts *timeSlice) []byte {
	var e encoder
	e.u64(formatVersion)
	e.time(ts.start)
	e.u64(ts.requests)
	e.u64(ts.errors)
	e.f64(ts.sumSeconds)
	for _, c := range ts.classes {
		e.u64(c)
	}
	e.sketch(ts.sketch)
	e.u64(uint64(len(ts.slowest)))
	for _, x := range ts.slowest {
		e.str(x.TraceID)
		e.str(x.SpanID)
		e.f64(x.Seconds)
		e.time(x.At)
	}
	e.u64(uint64(len(ts.slo)))
	for name, o := range ts.slo {
		e.str(name)
		e.u64(o.Good)
		e.u64(o.Bad)
	}
	return e.b
}

func decodeSlice(raw []byte) (*timeSlice, error) {
	d := decoder{b: raw}
	if v := d.u64(); v != formatVersion && d.err == nil {
		return nil, fmt.Errorf("slice format %d", v)
	}
	ts := &timeSlice{start: d.time(), requests: d.u64(), errors: d.u64(), sumSeconds: d.f64(), sketch: newSliceSketch()}
	for i := range ts.classes {
		ts.classes[i] = d.u64()
	}
	d.sketch(ts.sketch)
	for range min(d.count(), slowestPerSlice) {
		ts.slowest = append(ts.slowest, Exemplar{TraceID: d.str(), SpanID: d.str(), Seconds: d.f64(), At: d.time()})
	}
	if n := d.count(); n > 0 {
		ts.slo = map[string]slo.Outcome{}
		for range n {
			ts.slo[d.str()] = slo.Outcome{Good: d.u64(), Bad: d.u64()}
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err == nil && uint64(ts.sketch.GetCount()) != ts.requests {
		d.err = fmt.Errorf("its sketch holds %v requests, its count %d", ts.sketch.GetCount(), ts.requests)
	}
	return ts, d.err
}

type encoder struct{ b []byte }

func (e *encoder) u64(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i64(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) f64(v float64)  { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v)) }
func (e *encoder) bytes(p []byte) { e.u64(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) str(s string)   { e.u64(uint64(len(s))); e.b = append(e.b, s...) }

// sketch writes a sketch in DDSketch's own encoding, length-prefixed.
func (e *encoder) sketch(s *ddsketch.DDSketch) {
	var b []byte
	s.Encode(&b, false)
	e.bytes(b)
}

// time writes Unix nanoseconds, 0 for the zero time.
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.i64(0)
		return
	}
	e.i64(t.UnixNano())
}

// decoder reads what encoder wrote; past the first error every read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or garbled at %s", what)
	}
	d.b = nil
}

func (d *decoder) u64() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("an integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i64() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("an integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) f64() float64 {
	if len(d.b) < 8 {
		d.fail("a number")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// count reads a length bounded by what is left (each element takes at least a byte).
func (d *decoder) count() int {
	n := d.u64()
	if n > uint64(len(d.b)) {
		d.fail("a count")
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.u64()
	if n > uint64(len(d.b)) || n > maxRecordLength {
		d.fail("a length")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.bytes()) }

// sketch merges a sketch written by encoder.sketch into into.
func (d *decoder) sketch(into *ddsketch.DDSketch) {
	if b := d.bytes(); d.err == nil {
		if err := into.DecodeAndMergeWith(b); err != nil && d.err == nil {
			d.err = fmt.Errorf("sketch: %w", err)
		}
	}
}

func (d *decoder) time() time.Time {
	if ns := d.i64(); ns != 0 {
		return time.Unix(0, ns).UTC()
	}
	return time.Time{}
}
