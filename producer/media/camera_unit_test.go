package media

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/ipc"
)

// annexB joins NAL units with four-byte start codes.
func annexB(nalus ...[]byte) []byte {
	var out []byte
	for _, n := range nalus {
		out = append(out, 0, 0, 0, 1)
		out = append(out, n...)
	}
	return out
}

func TestAUBuilder(t *testing.T) {
	sps := []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9}
	pps := []byte{0x68, 0xeb, 0xe3, 0xcb}
	sps2 := []byte{0x67, 0x42, 0xc0, 0x1e, 0x11}
	aud := []byte{0x09, 0x10}
	sei := []byte{0x06, 0x05, 0x01, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00}
	p1 := []byte{0x41, 0x9a, 0x02}
	p2 := []byte{0x01, 0x9a, 0x03} // a second slice of the same picture

	cases := []struct {
		name        string
		sdpS, sdpP  []byte
		in          [][]byte
		want        []byte
		flags       uint32
		err         error
		wantSPSNext []byte // the SPS the builder holds after
	}{
		{name: "everything in-band: kept byte for byte", in: [][]byte{aud, sps, pps, sei, idr},
			want: annexB(aud, sps, pps, sei, idr), flags: ipc.FlagKeyframe | ipc.FlagHeader, wantSPSNext: sps},
		{name: "P-frame with AUD", sdpS: sps, sdpP: pps, in: [][]byte{aud, p1, p2}, want: annexB(aud, p1, p2), wantSPSNext: sps},
		{name: "P-frame without AUD gets one", sdpS: sps, sdpP: pps, in: [][]byte{p1}, want: annexB(audNALU, p1), wantSPSNext: sps},
		{name: "IDR without parameter sets gets the SDP's", sdpS: sps, sdpP: pps, in: [][]byte{sei, idr},
			want: annexB(audNALU, sps, pps, sei, idr), flags: ipc.FlagKeyframe | ipc.FlagHeader, wantSPSNext: sps},
		{name: "IDR with its SPS only gets the PPS after it", sdpS: sps, sdpP: pps, in: [][]byte{aud, sps2, idr},
			want: annexB(aud, sps2, pps, idr), flags: ipc.FlagKeyframe | ipc.FlagHeader, wantSPSNext: sps2},
		{name: "IDR before any parameter set", in: [][]byte{idr}, err: errNoParams},
		{name: "P-frame before any parameter set passes", in: [][]byte{p1}, want: annexB(audNALU, p1)},
		{name: "SPS on a P-frame is a header", sdpP: pps, in: [][]byte{sps, p1}, want: annexB(audNALU, sps, p1), flags: ipc.FlagHeader, wantSPSNext: sps},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			var b auBuilder
			b.setParams(ca.sdpS, ca.sdpP)
			got, flags, err := b.build(ca.in)
			if ca.err != nil {
				require.True(t, errors.Is(err, ca.err), "err = %v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, ca.want, got)
			require.Equal(t, ca.want, annexB(b.built()...), "built() are the NAL units of the result")
			require.Equal(t, ca.flags, flags)
			require.Equal(t, ca.wantSPSNext, b.sps)
		})
	}

	var b auBuilder
	_, _, err := b.build(nil)
	require.Error(t, err)
	_, _, err = b.build([][]byte{{}})
	require.ErrorContains(t, err, "empty NAL unit 0")
	b.setParams(sps, pps)
	require.Equal(t, sps, b.takeNewSPS())
	require.Nil(t, b.takeNewSPS(), "told once")
	_, _, err = b.build([][]byte{sps2, pps, idr})
	require.NoError(t, err)
	require.Equal(t, sps2, b.takeNewSPS(), "an in-band SPS that differs is news")
}

func TestCameraURL(t *testing.T) {
	for _, s := range []string{"rtsp://cam/live", "RTSP://u:p@10.0.0.5:554/Streaming/Channels/101", "rtsp://u@cam:8554/a?b=c"} {
		_, err := parseCameraURL(s)
		require.NoError(t, err, s)
	}
	for _, ca := range []struct{ in, want string }{
		{"rtsp:///live", "no host"},
		{"rtsp://cam:99999/x", `port "99999"`},
		{"rtsp://:pw@cam/x", "without a user name"},
		{"rtsp://cam/x#y", "fragment"},
		{"rtsp://u:p w%zz@cam/x", "not a URL"},
	} {
		_, err := parseCameraURL(ca.in)
		require.ErrorContains(t, err, ca.want, ca.in)
		require.NotContains(t, err.Error(), "p w", "the error does not quote the URL")
	}

	// Validate's errors never quote credentials, whether the URL parses or not.
	for _, s := range []string{"rtsp://admin:s3cret@cam:99999/x", "rtsp://admin:s3cret@/x", "rtsp://admin:s3c%zzret@cam/x"} {
		c := Config{Source: s}
		err := c.Validate()
		require.Error(t, err, s)
		require.NotContains(t, err.Error(), "s3c", s)
		require.NotContains(t, err.Error(), "admin", s)
	}
	c := Config{Source: "rtsp://admin:pw@cam/x", Encoder: "x264enc"}
	require.ErrorContains(t, c.Validate(), "not encoded")
	c = Config{Source: "rtsp://cam/x", RTSPTransport: "quic"}
	require.ErrorContains(t, c.Validate(), `RTSPTransport "quic"`)
	c = Config{Source: "rtsp://cam/x"}
	require.NoError(t, c.Validate())
	require.Equal(t, [2]int{0, 0}, [2]int{c.Width, c.Height}, "the camera's own size")
	require.Equal(t, TransportTCP, c.RTSPTransport)

	raw := "rtsp://admin:p%40ss:word@cam.lan:554/live?channel=1&password=hunter22"
	u, err := parseCameraURL(raw)
	require.NoError(t, err)
	r := redactURL(u)
	require.Equal(t, "rtsp://***@cam.lan:554/live?channel=1&password=%2A%2A%2A", r)
	require.Equal(t, "rtsp://***@cam:554/x", redactSource("rtsp://a:b@c@cam:554/x"))
	require.Equal(t, "rtsp://cam/x", redactSource("rtsp://cam/x"))

	sc := newScrubber(u, raw)
	msg := "dial rtsp://admin:p%40ss:word@cam.lan: 401 for admin / p@ss:word, token hunter22"
	got := sc.scrub(msg)
	for _, secret := range []string{"p@ss:word", "p%40ss", "hunter22"} {
		require.NotContains(t, got, secret)
	}
	require.True(t, strings.HasPrefix(got, "dial rtsp://***@cam.lan"), got)
	require.Nil(t, sc.err(nil))
	plain := errors.New("connection refused")
	require.Same(t, plain, sc.err(plain), "nothing to scrub: the error is kept, wrapping and all")
	require.Equal(t, "x *** y", sc.err(errors.New("x p@ss:word y")).Error())
}
