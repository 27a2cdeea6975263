package dashboard

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var shopProd = ServiceKey{"shop", "production"}

func recordVersion(v *Versions, version string, r MethodRoute, n int, seconds float64, errors int, at time.Time) {
	for i := range n {
		v.Record(shopProd, version, r, seconds, i < errors, 1, at)
	}
}

// 1.4.0 then 1.5.0: /reports three times slower, /checkout failing 10 % instead of none, /search new; /items the
// same. Counts per version are exact; the table flags what changed beyond the noise bounds.
func TestVersionsTableFlagsWhatTheNewVersionChanged(t *testing.T) {
	v := NewVersions(5)
	items, reports, checkout, search := MethodRoute{"GET", "/items/{id}"}, MethodRoute{"GET", "/reports"}, MethodRoute{"POST", "/checkout"}, MethodRoute{"GET", "/search"}
	recordVersion(v, "1.4.0", items, 100, 0.010, 0, t0)
	recordVersion(v, "1.4.0", reports, 50, 0.100, 0, t0)
	recordVersion(v, "1.4.0", checkout, 200, 0.050, 0, t0)
	recordVersion(v, "1.5.0", items, 100, 0.0105, 0, t0.Add(time.Hour))
	recordVersion(v, "1.5.0", reports, 50, 0.300, 0, t0.Add(time.Hour))
	recordVersion(v, "1.5.0", checkout, 200, 0.050, 20, t0.Add(time.Hour))
	recordVersion(v, "1.5.0", search, 40, 0.020, 0, t0.Add(time.Hour))

	table := v.Table(shopProd)
	require.Len(t, table, 2)
	latest, before := table[0], table[1]
	assert.Equal(t, "1.5.0", latest.Version)
	assert.Equal(t, t0.Add(time.Hour), latest.FirstSeen)
	assert.Equal(t, uint64(390), latest.Requests)
	assert.Equal(t, uint64(20), latest.Errors)
	assert.Equal(t, uint64(350), before.Requests)
	assert.Equal(t, []string{"GET /search"}, latest.NewRoutes)
	require.Len(t, latest.Changed, 2, "%+v", latest.Changed)
	assert.Equal(t, "GET", latest.Changed[0].Method)
	assert.Equal(t, "/reports", latest.Changed[0].Route)
	assert.Equal(t, "slower", latest.Changed[0].What)
	assert.InEpsilon(t, 300, latest.Changed[0].P99AfterMs, 0.01)
	assert.Equal(t, "/checkout", latest.Changed[1].Route)
	assert.Equal(t, "more errors", latest.Changed[1].What)
	assert.Equal(t, []VersionMarker{{"1.4.0", t0}, {"1.5.0", t0.Add(time.Hour)}}, v.Markers(shopProd))
}

// Past max versions, the oldest fold into {older}: counts kept.
func TestOldVersionsFoldIntoOne(t *testing.T) {
	v := NewVersions(2)
	r := MethodRoute{"GET", "/items"}
	for i, version := range []string{"1", "2", "3", "4"} {
		recordVersion(v, version, r, 10*(i+1), 0.01, 0, t0.Add(time.Duration(i)*time.Hour))
	}
	table := v.Table(shopProd)
	names := []string{}
	total := uint64(0)
	for _, vj := range table {
		names = append(names, vj.Version)
		total += vj.Requests
	}
	assert.Equal(t, []string{"4", "3", OlderVersions}, names)
	assert.Equal(t, uint64(100), total)
	assert.Equal(t, uint64(30), table[2].Requests, "versions 1 and 2")
}

func TestVersionsRestoreWhatTheyPersisted(t *testing.T) {
	v := NewVersions(5)
	recordVersion(v, "1.4.0", MethodRoute{"GET", "/items"}, 30, 0.01, 3, t0)
	recordVersion(v, "", MethodRoute{"GET", "/items"}, 5, 0.01, 0, t0)
	store := kv{}
	store.apply(v.Changes())
	assert.Empty(t, v.Changes(), "nothing changed since")
	r := NewVersions(5)
	require.NoError(t, r.Restore(store.get))
	assert.Equal(t, v.Table(shopProd), r.Table(shopProd))
	assert.Equal(t, NoVersion, r.Table(shopProd)[0].Version)
	store[VersionsKey] = store[VersionsKey][:10]
	assert.ErrorIs(t, NewVersions(5).Restore(store.get), ErrUnreadable)
}

// Without an environment, a service's versions merge over its environments.
func TestVersionsOverEveryEnvironment(t *testing.T) {
	v := NewVersions(5)
	r := MethodRoute{"GET", "/items"}
	v.Record(ServiceKey{"shop", "staging"}, "2", r, 0.01, false, 3, t0.Add(time.Hour))
	v.Record(ServiceKey{"shop", "production"}, "1", r, 0.01, false, 5, t0)
	v.Record(ServiceKey{"shop", "production"}, "2", r, 0.01, false, 7, t0.Add(2*time.Hour))
	table := v.Table(ServiceKey{Service: "shop"})
	require.Len(t, table, 2)
	assert.Equal(t, "2", table[0].Version)
	assert.Equal(t, uint64(10), table[0].Requests)
	assert.Equal(t, t0.Add(time.Hour), table[0].FirstSeen)
	assert.Equal(t, uint64(5), table[1].Requests)
}
