package chart

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// wellFormed parses svg as XML and counts its elements by name.
func wellFormed(t *testing.T, svg string) map[string]int {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	n := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return n
		}
		require.NoError(t, err, "SVG is not well-formed XML")
		if se, ok := tok.(xml.StartElement); ok {
			n[se.Name.Local]++
		}
	}
}

func TestLine(t *testing.T) {
	svg := Line(Options{Title: "fps <& rss>", XLabel: "s", YLabel: "fps", Markers: true, HLine: 28.5, HLineLabel: "95%",
		Bands: []Band{{From: 2, To: 3, Label: "kill -9 producer"}}},
		[]Series{{Name: "producer", X: []float64{0, 1, 2, 3, 4}, Y: []float64{30, 30, 12, 29, 30}}, {Name: "b", X: []float64{0, 4}, Y: []float64{-1, 2}}})
	n := wellFormed(t, svg)
	require.Equal(t, 2, n["polyline"], "one line per series")
	require.Equal(t, 7, n["circle"], "a marker per point")
	require.Contains(t, svg, "kill -9 producer")
	require.Contains(t, svg, "fps &lt;&amp; rss&gt;", "the title is escaped")
	require.Contains(t, svg, `stroke-dasharray="6 4"`, "the reference line")
}

func TestLineEmptyAndFlat(t *testing.T) {
	wellFormed(t, Line(Options{Title: "empty"}, nil))
	svg := Line(Options{Title: "flat", XTicksAtData: true}, []Series{{Name: "x", X: []float64{5}, Y: []float64{0}}})
	wellFormed(t, svg)
	require.NotContains(t, svg, "NaN")
}

func TestNice(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 2.1: 2.5, 3: 5, 7: 10, 1800: 2000} {
		require.InDelta(t, want, niceCeil(v), 1e-9, "niceCeil(%v)", v)
	}
	require.Equal(t, "-1.5", Trim(-1.5))
	require.Equal(t, "0", Trim(-1e-12))
	require.Equal(t, "30", Trim(30.0))
}

func TestLineXLog(t *testing.T) {
	svg := Line(Options{Title: "latency", XLog: true, BandLegend: "SIGSTOP", Bands: []Band{{From: 100, To: 100}}},
		[]Series{{Name: "a", X: []float64{80, 120, 230, 4800}, Y: []float64{0, 50, 99, 100}}})
	wellFormed(t, svg)
	require.NotContains(t, svg, "NaN")
	for _, tick := range []string{">10<", ">20<", ">50<", ">100<", ">1000<", ">5000<"} {
		require.Contains(t, svg, tick, "log ticks at 1, 2, 5 × 10^k from 10 to 5000")
	}
	require.NotContains(t, svg, ">10000<", "no tick past the data's nice ceiling")
	wide := Line(Options{XLog: true}, []Series{{Name: "a", X: []float64{40, 90000}, Y: []float64{0, 100}}})
	for _, tick := range []string{">10<", ">100<", ">1000<", ">10000<", ">100000<"} {
		require.Contains(t, wide, tick, "powers of ten over 4 decades")
	}
	require.NotContains(t, wide, ">20<", "no 2× ticks over 4 decades: the labels would touch")
	require.Contains(t, svg, ">SIGSTOP<", "the band's legend")
	// On a log axis 100 → 1000 is as wide as 10 → 100.
	o := Options{XLog: true}
	a := Line(o, []Series{{Name: "a", X: []float64{10, 100}, Y: []float64{1, 1}}})
	b := Line(o, []Series{{Name: "a", X: []float64{100, 1000}, Y: []float64{1, 1}}})
	pa := a[strings.Index(a, "points=") : strings.Index(a, "points=")+40]
	pb := b[strings.Index(b, "points=") : strings.Index(b, "points=")+40]
	require.Equal(t, pa, pb, "one decade spans the same width")
}
