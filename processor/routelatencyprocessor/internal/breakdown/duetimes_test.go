package breakdown

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A key set in dueTimes keeps the later of its times, is kept at least a generation and forgotten after two,
// however far apart the calls come, through growth.
func TestDueTimesForgetAfterOneToTwoGenerations(t *testing.T) {
	const generation = int64(10 * time.Second)
	var k dueTimes
	k.rotate(1, generation)
	for h := range uint64(10_000) { // grows from 1,024 slots
		_, ok := k.set(h*0x9e3779b97f4a7c15, int64(h))
		require.False(t, ok)
	}
	for h := range uint64(10_000) {
		due, ok := k.get(h * 0x9e3779b97f4a7c15)
		require.True(t, ok, "key %d", h)
		require.Equal(t, int64(h), due)
	}
	_, ok := k.get(12345)
	assert.False(t, ok, "never set")
	prev, ok := k.set(0x9e3779b97f4a7c15, 0)
	assert.True(t, ok)
	assert.Equal(t, int64(1), prev)
	due, _ := k.get(0x9e3779b97f4a7c15)
	assert.Equal(t, int64(1), due, "the later time kept")

	k.rotate(1+generation, generation)
	_, ok = k.get(0)
	assert.True(t, ok, "a generation after: kept (0 is stored as 1)")
	prev, ok = k.set(0, 7)
	assert.True(t, ok, "found in the old generation")
	assert.Equal(t, int64(0), prev)
	k.set(42, 1)
	k.rotate(1+2*generation-1, generation)
	_, ok = k.get(42)
	assert.True(t, ok)
	k.rotate(1+2*generation, generation)
	five := uint64(5)
	_, ok = k.get(five * 0x9e3779b97f4a7c15)
	assert.False(t, ok, "two generations after: forgotten")
	_, ok = k.get(42)
	assert.True(t, ok, "a generation after it came")
	k.rotate(1+10*generation, generation)
	_, ok = k.get(42)
	assert.False(t, ok, "long after, in one step")
}
