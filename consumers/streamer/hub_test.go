package streamer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// testAU returns an access unit numbered n (its PTS), a keyframe or not.
func testAU(n int, key bool) *accessUnit {
	t := byte(0x41)
	if key {
		t = 0x65
	}
	return &accessUnit{nalus: [][]byte{{t, byte(n)}}, size: 2, key: key, pts: int64(n)}
}

// numbers returns the PTS of aus.
func numbers(aus []*accessUnit) []int {
	out := make([]int, len(aus))
	for i, a := range aus {
		out[i] = int(a.pts)
	}
	return out
}

func TestHubSlowSinkOnlyHurtsItself(t *testing.T) {
	requests := 0
	h := newHub(100, func() { requests++ })
	fast := newSink("1", "a", "tcp", 5)
	slow := newSink("2", "b", "tcp", 5)
	h.attach(fast)
	h.attach(slow)
	require.Equal(t, 2, requests, "every new sink asks for a keyframe")
	require.True(t, h.waitingForKey())

	h.publish(testAU(0, false)) // before any keyframe: nobody can use it
	var got []int
	for n := 1; n <= 23; n++ {
		h.publish(testAU(n, n%10 == 1)) // keyframes 1, 11, 21
		got = append(got, numbers(h.take(fast, nil))...)
	}
	want := make([]int, 23)
	for i := range want {
		want[i] = i + 1
	}
	require.Equal(t, want, got, "the fast sink gets every frame from the first keyframe on")
	require.Zero(t, fast.dropped.Load())

	// The slow sink never drained: it kept 1..5, overflowed at 6 (losing
	// 1..6), skipped 7..10, queued 11..15, overflowed at 16 (losing
	// 11..16), skipped 17..20 and queued 21..23.
	require.Equal(t, []int{21, 22, 23}, numbers(h.take(slow, nil)))
	require.Equal(t, uint64(20), slow.dropped.Load())
	require.False(t, h.waitingForKey())

	c, n := h.totals()
	require.Equal(t, 2, n)
	require.Equal(t, uint64(20), c.dropped)
	h.detach(slow)
	h.detach(slow) // idempotent
	c, n = h.totals()
	require.Equal(t, 1, n)
	require.Equal(t, uint64(20), c.dropped, "totals keep a departed sink's counters")
}

func TestHubStartFromCache(t *testing.T) {
	h := newHub(100, func() {})
	for n := 0; n < 8; n++ {
		h.publish(testAU(n, n == 0 || n == 5))
	}
	s := newSink("1", "a", "udp", 10)
	h.attach(s)
	h.publish(testAU(8, false))
	require.Nil(t, h.take(s, nil), "a new sink waits for a keyframe")
	require.Equal(t, []int{5, 6, 7, 8}, numbers(h.startFromCache(s)), "the cache holds the GOP from the last keyframe")
	require.Nil(t, h.startFromCache(s), "only once")
	h.publish(testAU(9, false))
	require.Equal(t, []int{9}, numbers(h.take(s, nil)), "live frames follow the cache")

	// A sink that got a live keyframe does not start from the cache.
	s2 := newSink("2", "b", "udp", 10)
	h.attach(s2)
	h.publish(testAU(10, true))
	require.Nil(t, h.startFromCache(s2))
	require.Equal(t, []int{10}, numbers(h.take(s2, nil)))

	// A gap (producer restart) empties the cache.
	h.gap()
	require.True(t, h.waitingForKey())
	s3 := newSink("3", "c", "tcp", 10)
	h.attach(s3)
	require.Nil(t, h.startFromCache(s3))
}

func TestHubCacheLimit(t *testing.T) {
	h := newHub(3, func() {})
	for n := 0; n < 3; n++ {
		h.publish(testAU(n, n == 0))
	}
	s := newSink("1", "a", "tcp", 10)
	h.attach(s)
	h.publish(testAU(3, false)) // a GOP longer than the cache: dropped whole
	require.Nil(t, h.startFromCache(s))
	h.publish(testAU(4, true))
	require.Equal(t, []int{4}, numbers(h.take(s, nil)))

	off := newHub(0, func() {})
	off.publish(testAU(0, true))
	s2 := newSink("2", "b", "tcp", 10)
	off.attach(s2)
	require.Nil(t, off.startFromCache(s2), "gop-cache 0 disables the cache")
}

func TestHubResync(t *testing.T) {
	h := newHub(10, func() {})
	s := newSink("1", "a", "tcp", 10)
	h.attach(s)
	h.publish(testAU(0, true))
	h.publish(testAU(1, false))
	h.resync(s, 2) // the writer lost 2 (the transport queue was full)
	require.Equal(t, uint64(4), s.dropped.Load(), "2 lost in the writer + 2 queued")
	h.publish(testAU(2, false))
	require.Equal(t, uint64(5), s.dropped.Load())
	h.publish(testAU(3, true))
	require.Equal(t, []int{3}, numbers(h.take(s, nil)))
}

func TestHubParams(t *testing.T) {
	h := newHub(10, func() {})
	_, _, gen := h.params()
	require.Zero(t, gen)
	sps := []byte{0x67, 1, 2}
	require.True(t, h.setParams(sps, []byte{0x68, 1}))
	sps[1] = 9 // the hub keeps its own copy
	got, _, gen := h.params()
	require.Equal(t, []byte{0x67, 1, 2}, got)
	require.Equal(t, uint64(1), gen)
	require.False(t, h.setParams([]byte{0x67, 1, 2}, []byte{0x68, 1}))
	require.True(t, h.setParams([]byte{0x67, 1, 3}, []byte{0x68, 1}))
	_, _, gen = h.params()
	require.Equal(t, uint64(2), gen)
	require.NoError(t, h.waitParams(t.Context()))
	au := testAU(0, true)
	h.publish(au)
	require.Equal(t, uint64(2), au.gen, "access units carry the generation of their parameter sets")
}
