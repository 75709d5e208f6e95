package ring

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// consumerOf maps the producer's ring through a second fd, as a consumer
// process would after receiving it.
func consumerOf(t *testing.T, p *Ring) *Ring {
	t.Helper()
	fd, err := unix.Dup(p.FD())
	require.NoError(t, err)
	defer unix.Close(fd)
	c, err := Map(fd, Size)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestPushPop(t *testing.T) {
	p, err := Create("test-ring")
	require.NoError(t, err)
	defer p.Close()
	c := consumerOf(t, p)
	out, err := p.Pop(nil, 64)
	require.NoError(t, err)
	require.Empty(t, out)
	next := uint64(1)
	for round := range 5 { // wraps around the ring several times
		for range Entries {
			require.True(t, c.Push(next), "round %d", round)
			next++
		}
		require.False(t, c.Push(next), "full")
		var got []uint64
		for len(got) < Entries {
			got, err = p.Pop(got, 100)
			require.NoError(t, err)
		}
		require.Equal(t, next-Entries, got[0])
		require.Equal(t, next-1, got[Entries-1])
		got, err = p.Pop(got[:0], 100)
		require.NoError(t, err)
		require.Empty(t, got, "all read")
	}
}

func TestKick(t *testing.T) {
	p, err := Create("test-ring")
	require.NoError(t, err)
	defer p.Close()
	c := consumerOf(t, p)
	p.SetKick(true)
	require.False(t, c.Push(1), "the producer waits: release on the socket")
	p.SetKick(false)
	require.True(t, c.Push(1))
	got, err := p.Pop(nil, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{1}, got)
}

func TestBrokenHead(t *testing.T) {
	p, err := Create("test-ring")
	require.NoError(t, err)
	defer p.Close()
	c := consumerOf(t, p)
	binary.LittleEndian.PutUint64(c.mem[offHead:], Entries+1)
	_, err = p.Pop(nil, 10)
	require.ErrorIs(t, err, ErrOverrun)
	binary.LittleEndian.PutUint64(c.mem[offHead:], 0)
	p.tail = 5
	_, err = p.Pop(nil, 10)
	require.ErrorIs(t, err, ErrOverrun, "head behind tail")
}

// The shared tail is for the consumer's eyes: the producer keeps its own,
// so a consumer rewriting it gains nothing.
func TestSharedTailIgnored(t *testing.T) {
	p, err := Create("test-ring")
	require.NoError(t, err)
	defer p.Close()
	c := consumerOf(t, p)
	for id := range uint64(3) {
		require.True(t, c.Push(id+1))
	}
	got, err := p.Pop(nil, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, got)
	binary.LittleEndian.PutUint64(c.mem[offTail:], 0) // read everything again, please
	got, err = p.Pop(nil, 10)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestSealedAndLayoutChecked(t *testing.T) {
	p, err := Create("test-ring")
	require.NoError(t, err)
	defer p.Close()
	require.ErrorIs(t, unix.Ftruncate(p.FD(), 0), unix.EPERM, "a consumer cannot shrink the producer's mapping")
	_, err = Map(p.FD(), 100)
	require.ErrorIs(t, err, ErrLayout)
	fd, err := unix.MemfdCreate("not-a-ring", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(fd)
	require.NoError(t, unix.Ftruncate(fd, Size))
	_, err = Map(fd, Size)
	require.True(t, errors.Is(err, ErrLayout), "%v", err)
}
