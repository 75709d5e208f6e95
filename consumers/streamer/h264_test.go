package streamer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSplitAnnexB(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00, 0x21}
	var au []byte
	au = append(au, 0, 0, 0, 1, 0x09, 0xf0) // access unit delimiter: left out
	au = append(au, 0, 0, 0, 1)
	au = append(au, sps...)
	au = append(au, 0, 0, 1)
	au = append(au, pps...)
	au = append(au, 0, 0, 0, 1)
	au = append(au, idr...)
	au = append(au, 0, 0) // trailing_zero_8bits

	nalus, err := splitAnnexB(nil, au)
	require.NoError(t, err)
	require.Equal(t, [][]byte{sps, pps, idr}, nalus)
	gotSPS, gotPPS := parameterSets(nalus)
	require.Equal(t, sps, gotSPS)
	require.Equal(t, pps, gotPPS)
	require.True(t, hasIDR(nalus))

	u, err := newAccessUnit(au, false)
	require.NoError(t, err)
	require.True(t, u.key, "an IDR slice makes a keyframe even without the producer's flag")
	require.Equal(t, len(sps)+len(pps)+len(idr), u.size)

	p, err := newAccessUnit([]byte{0, 0, 1, 0x41, 0x9a, 0x02}, false)
	require.NoError(t, err)
	require.False(t, p.key)
	require.False(t, hasIDR(p.nalus))

	for name, bad := range map[string][]byte{
		"no start code":      {0x41, 0x9a, 0x02, 0x03},
		"garbage first":      {0x41, 0, 0, 1, 0x41, 0x9a},
		"too short":          {0, 0},
		"only a delimiter":   {0, 0, 1, 0x09, 0xf0},
		"only a start code":  {0, 0, 0, 1},
		"zeros and no units": {0, 0, 0, 0},
	} {
		_, err := newAccessUnit(bad, true)
		require.Error(t, err, name)
	}
}

func TestRTPTime(t *testing.T) {
	require.Equal(t, int64(90000), rtpTime(1e9))
	require.Equal(t, int64(3000), rtpTime(int64(time.Second/30)))
	require.Equal(t, int64(-135000), rtpTime(-15e8))
	// 1000 hours (x264's default PTS offset) does not overflow.
	require.Equal(t, int64(1000*3600*90000), rtpTime(1000*3600*1e9))
}
