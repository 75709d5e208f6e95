package ipc

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// TestOutOfRangeIntegers: an integer that does not fit its field is an
// error naming the field, not a wrapped-around number (the msgpack library
// converts without checking).
func TestOutOfRangeIntegers(t *testing.T) {
	hello := func(k string, v any) map[string]any {
		m := map[string]any{"major": 1, "minor": 0, "name": "x", "stream": "raw", "max_in_flight": 4}
		m[k] = v
		return m
	}
	caps := map[string]any{"format": "NV12", "width": 320, "height": 240, "fps_n": 30, "fps_d": 1,
		"planes": []any{map[string]any{"offset": 0, "stride": 320, "size": 76800, "fd": 0}, map[string]any{"offset": 76800, "stride": 320, "size": 38400, "fd": 300}}}
	for _, tc := range []struct {
		name  string
		typ   Type
		body  map[string]any
		field string
	}{
		{"uint32 ≥ 2^32", TypeHello, hello("max_in_flight", uint64(1)<<33), "max_in_flight"},
		{"negative into uint32", TypeHello, hello("max_hold_ms", -1), "max_hold_ms"},
		{"uint16 ≥ 2^16", TypeHello, hello("major", 70000), "major"},
		{"uint64 beyond int64", TypeHello, hello("replay_from_ns", uint64(1)<<63), "replay_from_ns"},
		{"nested uint8", TypeCaps, caps, "planes[1].fd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := msgpack.Marshal(tc.body)
			require.NoError(t, err)
			m, err := NewCodec().Decode(append([]byte{byte(tc.typ)}, body...))
			require.Nil(t, m)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tc.field)
		})
	}

	// In range, at the edges: accepted as sent.
	for _, body := range []map[string]any{
		hello("max_in_flight", uint64(1)<<32-1),
		hello("replay_from_ns", -5),
		hello("replay_from_ns", int64(-1)<<63),
	} {
		b, err := msgpack.Marshal(body)
		require.NoError(t, err)
		m, err := NewCodec().Decode(append([]byte{byte(TypeHello)}, b...))
		require.NoError(t, err, "%v", body)
		h := m.(*Hello)
		switch v := body["max_in_flight"].(type) {
		case uint64:
			require.Equal(t, uint32(v), h.MaxInFlight)
		}
		if v, ok := body["replay_from_ns"].(int64); ok {
			require.Equal(t, v, h.ReplayFromNS)
		}
		if v, ok := body["replay_from_ns"].(int); ok {
			require.Equal(t, int64(v), h.ReplayFromNS)
		}
	}
}
