package dashboard

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"
)

// kv is a storage client's records.
type kv map[string][]byte

func (s kv) apply(changes []Change) {
	for _, c := range changes {
		if c.Value == nil {
			delete(s, c.Key)
		} else {
			s[c.Key] = append([]byte(nil), c.Value...)
		}
	}
}

func (s kv) get(key string) ([]byte, error) { return s[key], nil }

func TestHistoryRestoresWhatItPersisted(t *testing.T) {
	h := NewHistory(shippedTiers, 10)
	items := RouteKey{"shop", "production", "GET", "/items/{item_id}"}
	checkout := RouteKey{"shop", "production", "POST", "/checkout"}
	store := kv{}
	for i := range 100 {
		at := t0.Add(time.Duration(i-100) * 15 * time.Second)
		h.Record(items, interval(t, 200, 0, 0.010*float64(1+i%7), 0.020), at)
		h.Record(checkout, interval(t, 500, 1, 0.3), at)
		h.RecordSLO(checkout, "checkout-availability", slo.Outcome{Bad: 1}, at)
		if i%10 == 9 {
			store.apply(h.Changes())
		}
	}
	assert.Empty(t, h.Changes(), "nothing changed since the last persist")

	restored := NewHistory(shippedTiers, 10)
	n, err := restored.Restore(store.get)
	require.NoError(t, err)
	assert.Positive(t, n)
	for _, w := range []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour} {
		want, got := h.QueryRoute(items, w, t0), restored.QueryRoute(items, w, t0)
		assert.Equal(t, want.Window.Requests, got.Window.Requests, "%s", w)
		assert.Equal(t, uint64(200), got.Window.Requests, "%s", w)
		assert.Equal(t, want.Points, got.Points, "%s: slice by slice, quantiles included", w)
		assert.Equal(t, want.Slowest, got.Slowest, "%s", w)
	}
	assert.Equal(t, h.sloOutcomes(time.Hour, t0), restored.sloOutcomes(time.Hour, t0))
	assert.Equal(t, uint64(100), restored.sloOutcomes(time.Hour, t0)[sloKey{checkout, "checkout-availability"}].Bad)
}

func TestRestoredRouteNumbersAreKept(t *testing.T) {
	// Eight routes: the index lists them in the map's order, so a restore that numbered them as it read them
	// would almost surely shift some.
	h := NewHistory(shippedTiers, 20)
	for i := range 8 {
		h.Record(RouteKey{"shop", "production", "GET", fmt.Sprintf("/r%d", i)}, interval(t, 200, 0, 0.1), t0)
	}
	store := kv{}
	store.apply(h.Changes())

	restored := NewHistory(shippedTiers, 20)
	_, err := restored.Restore(store.get)
	require.NoError(t, err)
	for key, rh := range h.routes {
		assert.Equal(t, rh.id, restored.routes[key].id, "%v", key)
	}
	// A new route after a restart takes the next number: neither a restored one's nor one skipped.
	restored.Record(RouteKey{"shop", "production", "GET", "/new"}, interval(t, 200, 0, 0.1), t0)
	for _, c := range restored.Changes() {
		if c.Key != IndexKey {
			assert.Regexp(t, `^history/8/`, c.Key, "the ninth route's records")
		}
	}
}

func TestUnreadableHistoryRestoresEmpty(t *testing.T) {
	h := NewHistory(shippedTiers, 10)
	key := RouteKey{"shop", "production", "GET", "/items/{item_id}"}
	h.Record(key, interval(t, 200, 0, 0.01), t0)
	good := kv{}
	good.apply(h.Changes())

	// slot is the record of the route's slice in a tier (t0 fills one per tier).
	slot := func(s kv, tier int) string {
		for k := range s {
			if strings.HasPrefix(k, fmt.Sprintf("history/0/%d/", tier)) {
				return k
			}
		}
		t.Fatalf("no slice of tier %d in %v", tier, s)
		return ""
	}
	for name, damage := range map[string]func(kv){
		"a truncated index": func(s kv) { s[IndexKey] = s[IndexKey][:len(s[IndexKey])/2] },
		"a garbled slice":   func(s kv) { s[slot(s, 0)] = []byte{1, 0xff, 0xff, 0xff} },
		"a slice cut short": func(s kv) { k := slot(s, 1); s[k] = s[k][:len(s[k])-3] },
		"another format":    func(s kv) { s[IndexKey] = []byte{9} },
		"a length claiming a megabyte and more": func(s kv) {
			s[slot(s, 2)] = append([]byte{1, 2, 1, 1}, 0xff, 0xff, 0xff, 0x0f)
		},
	} {
		t.Run(name, func(t *testing.T) {
			store := kv{}
			for k, v := range good {
				store[k] = append([]byte(nil), v...)
			}
			damage(store)
			r := NewHistory(shippedTiers, 10)
			_, err := r.Restore(store.get)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrUnreadable), "%v", err)
			assert.Empty(t, r.routes, "an unreadable history restores nothing")
			assert.Zero(t, r.QueryRoute(key, time.Hour, t0.Add(time.Second)).Window.Requests)
		})
	}
}

// A route that leaves the history (expired, its place taken) has its records deleted.
func TestRoutesThatLeaveHaveTheirRecordsDeleted(t *testing.T) {
	tiers := []Tier{{time.Minute, 5 * time.Minute}}
	h := NewHistory(tiers, 1)
	store := kv{}
	h.Record(RouteKey{"shop", "", "GET", "/a"}, interval(t, 200, 0, 0.1), t0)
	store.apply(h.Changes())
	h.Record(RouteKey{"shop", "", "GET", "/b"}, interval(t, 200, 0, 0.1), t0.Add(6*time.Minute))
	store.apply(h.Changes())
	for k := range store {
		assert.NotRegexp(t, `^history/0/`, k, "the first route's records are gone")
	}
	r := NewHistory(tiers, 1)
	_, err := r.Restore(store.get)
	require.NoError(t, err)
	assert.Len(t, r.routes, 1)
}
