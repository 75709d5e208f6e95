package fdpass

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPoller(t *testing.T) {
	p, err := NewPoller()
	require.NoError(t, err)
	defer p.Close()
	var peers []*Conn
	for i := range 3 {
		a, b, err := Pair()
		require.NoError(t, err)
		defer a.Close()
		defer b.Close()
		require.Error(t, p.Add(a, uint64(i)), "only blocking-mode Conns")
		require.NoError(t, a.SetBlocking(true))
		require.NoError(t, p.Add(a, uint64(10+i)))
		peers = append(peers, b)
	}
	keys, err := p.Wait(nil, 0)
	require.NoError(t, err)
	require.Empty(t, keys)

	require.NoError(t, peers[1].Send([]byte{1}, nil))
	keys, err = p.Wait(keys, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{11}, keys)
	keys, err = p.Wait(keys, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{11}, keys, "level-triggered: still unread")

	require.NoError(t, peers[2].Close())
	keys, err = p.Wait(keys, 0)
	require.NoError(t, err)
	slices.Sort(keys)
	require.Equal(t, []uint64{11, 12}, keys, "an end of stream is reported")

	p.Remove(peers[0]) // a non-blocking Conn is never watched: nothing to do
}

// A Wake makes the next Wait return at once, reporting no Conn.
func TestPollerWake(t *testing.T) {
	p, err := NewPoller()
	require.NoError(t, err)
	defer p.Close()
	p.Wake()
	t0 := time.Now()
	keys, err := p.Wait(nil, 5*time.Second)
	require.NoError(t, err)
	require.Empty(t, keys)
	require.Less(t, time.Since(t0), 4*time.Second)
	p.Close()
	_, err = p.Wait(keys, time.Second)
	require.ErrorIs(t, err, net.ErrClosed)
}
