package routelatencyprocessor // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor"

import (
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// LimitsConfig bounds what each span carries onwards, as a backend's documented limits require (New Relic: 4095
// characters a value, 255 characters a name, 64 entries an array; attributes per event). It applies to the
// attributes of every span, span event and resource; 0 turns a limit off. What it drops or cuts is counted.
type LimitsConfig struct {
	// MaxAttributes is the most attributes one span, span event or resource keeps; the Keep keys first, then the
	// others in the order they came.
	MaxAttributes int `mapstructure:"max_attributes"`
	// Keep names the attributes kept first when MaxAttributes drops some.
	Keep []string `mapstructure:"keep"`
	// MaxValueLength cuts string values to this many bytes, at a character boundary (so never more characters).
	MaxValueLength int `mapstructure:"max_value_length"`
	// MaxArrayLength cuts array values to this many entries.
	MaxArrayLength int `mapstructure:"max_array_length"`
	// MaxKeyLength drops attributes whose name is longer (bytes).
	MaxKeyLength int `mapstructure:"max_key_length"`
}

func (l *LimitsConfig) enabled() bool {
	return l.MaxAttributes > 0 || l.MaxValueLength > 0 || l.MaxArrayLength > 0 || l.MaxKeyLength > 0
}

func (l *LimitsConfig) validate() error {
	var errs []error
	for key, v := range map[string]int{"max_attributes": l.MaxAttributes, "max_value_length": l.MaxValueLength,
		"max_array_length": l.MaxArrayLength, "max_key_length": l.MaxKeyLength} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("limits.%s: must not be negative (0 is no limit), got %d", key, v))
		}
	}
	if l.MaxAttributes > 0 && len(l.Keep) > l.MaxAttributes {
		errs = append(errs, fmt.Errorf("limits.keep: %d keys, more than max_attributes (%d)", len(l.Keep), l.MaxAttributes))
	}
	if len(l.Keep) > 0 && l.MaxAttributes == 0 {
		errs = append(errs, errors.New("limits.keep: needs max_attributes"))
	}
	return errors.Join(errs...)
}

// apply bounds one attribute map and reports how many attributes it dropped and how many values it cut.
func (l *LimitsConfig) apply(m pcommon.Map) (dropped, truncated int64) {
	if l.MaxKeyLength > 0 {
		m.RemoveIf(func(k string, _ pcommon.Value) bool {
			if len(k) > l.MaxKeyLength {
				dropped++
				return true
			}
			return false
		})
	}
	if l.MaxAttributes > 0 && m.Len() > l.MaxAttributes {
		others := l.MaxAttributes
		for _, k := range l.Keep {
			if _, ok := m.Get(k); ok {
				others--
			}
		}
		m.RemoveIf(func(k string, _ pcommon.Value) bool {
			if slices.Contains(l.Keep, k) {
				return false
			}
			if others > 0 {
				others--
				return false
			}
			dropped++
			return true
		})
	}
	if l.MaxValueLength > 0 || l.MaxArrayLength > 0 {
		m.Range(func(_ string, v pcommon.Value) bool {
			switch v.Type() {
			case pcommon.ValueTypeStr:
				if s := v.Str(); l.MaxValueLength > 0 && len(s) > l.MaxValueLength {
					v.SetStr(cutAtRune(s, l.MaxValueLength))
					truncated++
				}
			case pcommon.ValueTypeSlice:
				if s := v.Slice(); l.MaxArrayLength > 0 && s.Len() > l.MaxArrayLength {
					n := 0
					s.RemoveIf(func(pcommon.Value) bool { n++; return n > l.MaxArrayLength })
					truncated++
				}
			}
			return true
		})
	}
	return dropped, truncated
}

// cutAtRune returns the longest prefix of s of at most n bytes that does not split a character.
func cutAtRune(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
