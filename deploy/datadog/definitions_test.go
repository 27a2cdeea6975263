// Package datadog holds the Datadog definitions generated from environments/slos.yaml (`make slo-rules`); its test
// decodes them strictly with Datadog's own API client types, as the Kubernetes manifests are with Kubernetes'.
package datadog

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// strict decodes raw into v and fails on anything the API type does not know (the client keeps unknown fields
// aside instead of refusing them) or on invalid enum values (which it keeps as an unparsed object).
func strict(t *testing.T, raw json.RawMessage, v interface {
	json.Unmarshaler
}, additional func() map[string]any, unparsed func() any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(raw, v))
	assert.Empty(t, additional(), "fields unknown to the API type: %s", raw)
	assert.Nil(t, unparsed(), "values the API type cannot parse: %s", raw)
}

func TestDefinitionsDecodeStrictlyWithDatadogsTypes(t *testing.T) {
	b, err := os.ReadFile("slos.json")
	require.NoError(t, err)
	var defs struct {
		SLOs     []json.RawMessage `json:"service_level_objectives"`
		Monitors []json.RawMessage `json:"monitors"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&defs))
	require.NotEmpty(t, defs.SLOs)

	names := map[string]bool{}
	for _, raw := range defs.SLOs {
		var slo datadogV1.ServiceLevelObjectiveRequest
		strict(t, raw, &slo, func() map[string]any { return slo.AdditionalProperties }, func() any { return slo.UnparsedObject })
		assert.Equal(t, datadogV1.SLOTYPE_METRIC, slo.Type)
		q := slo.GetQuery()
		assert.Empty(t, q.AdditionalProperties)
		assert.Contains(t, q.Numerator, "outcome:good", "good events over all events")
		assert.Contains(t, q.Denominator, "sum:slo.events{slo.name:"+slo.Name+"}")
		for _, th := range slo.Thresholds {
			assert.Empty(t, th.AdditionalProperties)
			assert.True(t, th.Timeframe.IsValid(), "timeframe %q", th.Timeframe)
			assert.Less(t, th.Target, 100.0)
		}
		names[slo.Name] = true
	}
	require.NotEmpty(t, defs.Monitors)
	for _, raw := range defs.Monitors {
		var m datadogV1.Monitor
		strict(t, raw, &m, func() map[string]any { return m.AdditionalProperties }, func() any { return m.UnparsedObject })
		assert.Equal(t, datadogV1.MONITORTYPE_SLO_ALERT, m.Type)
		assert.Contains(t, m.Query, "burn_rate(\"SLO_ID(")
		opts := m.GetOptions()
		assert.Empty(t, opts.AdditionalProperties)
		found := false
		for name := range names {
			found = found || strings.Contains(m.Query, "SLO_ID("+name+")")
		}
		assert.True(t, found, "%s names one of the SLOs", m.Query)
	}
}
