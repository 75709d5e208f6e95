package producer

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestPeerLabel(t *testing.T) {
	for _, ca := range []struct{ in, want string }{
		{"framehub-recorder", "framehub-recorder"},
		{"caméra-nord 北", "caméra-nord 北"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{"\xff\xfebad", "\uFFFD\uFFFDbad"},
		{"tab\there\nnew\x00", "tab\uFFFDhere\uFFFDnew\uFFFD"},
		{"bidi\u202eevil", "bidi\uFFFDevil"},
		{strings.Repeat("a", 65), strings.Repeat("a", 61) + "…"},
		{strings.Repeat("é", 40), strings.Repeat("é", 30) + "…"}, // 2-byte runes: 60 bytes kept
		{strings.Repeat("\xff", 30), strings.Repeat("\uFFFD", 20) + "…"},
	} {
		got := peerLabel(ca.in)
		require.Equal(t, ca.want, got, "%q", ca.in)
		require.LessOrEqual(t, len(got), maxLabelBytes)
	}
}

// FuzzPeerLabel: whatever a peer sends, the label is valid UTF-8,
// printable, bounded, and accepted by the Prometheus client.
func FuzzPeerLabel(f *testing.F) {
	for _, s := range []string{"", "recorder", "\xff", strings.Repeat("x", 64992), "a\x00b", "é" + strings.Repeat("b", 63)} {
		f.Add(s)
	}
	desc := prometheus.NewDesc("t", "t", []string{"consumer"}, nil)
	f.Fuzz(func(t *testing.T, s string) {
		l := peerLabel(s)
		require.True(t, utf8.ValidString(l))
		require.LessOrEqual(t, len(l), maxLabelBytes)
		for _, r := range l {
			require.True(t, unicode.IsPrint(r), "%q", r)
		}
		if len(s) <= maxLabelBytes && printable(s) {
			require.Equal(t, s, l, "a valid name is kept as it is")
		}
		_, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, 1, l)
		require.NoError(t, err)
	})
}
