// Package chart draws the line charts of framehub's benchmark and soak
// reports as standalone SVG files: no dependency, readable in a browser or
// on GitHub, and diffable in review.
package chart

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Series is one line of a chart: points (X[i], Y[i]) in X order.
type Series struct {
	Name string
	X, Y []float64
}

// Band shades the X range [From, To], e.g. the seconds a fault lasted.
type Band struct {
	From, To float64
	Label    string // shown on hover
}

// Options describe a chart.
type Options struct {
	Title, XLabel, YLabel string
	// Markers draws a dot on every point (for few points, such as N = 1, 3, 6).
	Markers bool
	// XTicksAtData labels the X axis at the data's X values instead of at
	// evenly spaced round numbers (for a categorical-like axis).
	XTicksAtData bool
	// YMin and YMax fix the Y range when YMax > YMin; otherwise it is
	// 0 (or below, for negative data) up to a round number above the data.
	YMin, YMax float64
	// HLine draws a dashed horizontal reference line (e.g. a target) when
	// HLineLabel is set.
	HLine      float64
	HLineLabel string
	Bands      []Band
	// BandLegend names the bands in the legend (default "fault windows").
	BandLegend string
	// XLog draws the X axis on a log scale, ticked at 1, 2, 5 × powers of
	// ten (for latency distributions whose tails span decades). X values
	// must be > 0; smaller ones are drawn at the axis' left end.
	XLog bool
}

const (
	width, height          = 760.0, 420.0
	left, right, top, bott = 70.0, 190.0, 40.0, 50.0
)

// color is the k-th series' color.
func color(k int) string {
	const palette = "#1f77b4#d62728#2ca02c#9467bd#ff7f0e#8c564b"
	i := k % (len(palette) / 7) * 7
	return palette[i : i+7]
}

// Line draws series as an SVG line chart with a legend and returns the SVG
// document.
func Line(o Options, ss []Series) string {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), 0.0, 0.0
	for _, s := range ss {
		for i := range s.X {
			xmin, xmax = min(xmin, s.X[i]), max(xmax, s.X[i])
			ymin, ymax = min(ymin, s.Y[i]), max(ymax, s.Y[i])
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	xt := func(x float64) float64 { return x }
	if o.XLog {
		xmin, xmax = logFloor(max(xmin, 1e-9)), niceCeil(max(xmax, 1e-9))
		xt = func(x float64) float64 { return math.Log10(max(x, xmin)) }
	}
	if o.HLineLabel != "" {
		ymax = max(ymax, o.HLine)
	}
	ymax = niceCeil(ymax * 1.1)
	if ymin < 0 { // noise can make an overhead negative
		ymin = -niceCeil(-ymin * 1.1)
	}
	if o.YMax > o.YMin {
		ymin, ymax = o.YMin, o.YMax
	}
	px := func(x float64) float64 { return left + (xt(x)-xt(xmin))/(xt(xmax)-xt(xmin))*(width-left-right) }
	py := func(y float64) float64 {
		y = min(max(y, ymin), ymax)
		return height - bott - (y-ymin)/(ymax-ymin)*(height-top-bott)
	}

	var b strings.Builder
	f := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	f(`<text x="%g" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", (width-right+left)/2, html.EscapeString(o.Title))
	for _, bd := range o.Bands {
		x0, x1 := px(max(bd.From, xmin)), px(min(bd.To, xmax))
		if x1 <= x0 {
			x1 = x0 + 1
		}
		f(`<rect x="%.1f" y="%g" width="%.1f" height="%g" fill="#f4c7c3" opacity="0.6"><title>%s</title></rect>`+"\n",
			x0, top, x1-x0, height-top-bott, html.EscapeString(bd.Label))
	}
	ystep := niceStep((ymax - ymin) / 5)
	for y := math.Ceil(ymin/ystep) * ystep; y <= ymax+ystep/1e6; y += ystep {
		f(`<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(y), width-right, py(y))
		f(`<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, Trim(y))
	}
	for _, x := range xTicks(o, ss, xmin, xmax) {
		f(`<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(x), height-bott+16, Trim(x))
	}
	f(`<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="black"/>`+"\n", left, py(max(0, ymin)), width-right, py(max(0, ymin)))
	f(`<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, top, left, height-bott)
	f(`<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", (width-right+left)/2, height-10, html.EscapeString(o.XLabel))
	f(`<text transform="translate(16 %g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (height-bott+top)/2, html.EscapeString(o.YLabel))
	if o.HLineLabel != "" {
		f(`<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#555" stroke-dasharray="6 4"/>`+"\n", left, py(o.HLine), width-right, py(o.HLine))
	}
	legend := 0
	for k, s := range ss {
		c := color(k)
		var pts []string
		for j := range s.X {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(s.Y[j])))
		}
		f(`<polyline fill="none" stroke="%s" stroke-width="%g" points="%s"/>`+"\n", c, lineWidth(len(s.X)), strings.Join(pts, " "))
		if o.Markers {
			for j := range s.X {
				f(`<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s at %s: %.2f</title></circle>`+"\n",
					px(s.X[j]), py(s.Y[j]), c, html.EscapeString(s.Name), Trim(s.X[j]), s.Y[j])
			}
		}
		legendEntry(&b, legend, c, s.Name, false)
		legend++
	}
	if o.HLineLabel != "" {
		legendEntry(&b, legend, "#555", o.HLineLabel, true)
		legend++
	}
	if len(o.Bands) > 0 {
		ly := top + 20 + float64(legend)*20
		f(`<rect x="%g" y="%g" width="20" height="10" fill="#f4c7c3"/>`+"\n", width-right+15, ly-10)
		name := o.BandLegend
		if name == "" {
			name = "fault windows"
		}
		f(`<text x="%g" y="%g">%s</text>`+"\n", width-right+40, ly, html.EscapeString(name))
	}
	f("</svg>\n")
	return b.String()
}

func legendEntry(b *strings.Builder, k int, color, name string, dashed bool) {
	ly := top + 20 + float64(k)*20
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="6 4"`
	}
	fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"%s/>`+"\n", width-right+15, ly-4, width-right+35, ly-4, color, dash)
	fmt.Fprintf(b, `<text x="%g" y="%g">%s</text>`+"\n", width-right+40, ly, html.EscapeString(name))
}

// lineWidth thins the line of long series so that a 30-minute soak's
// 1,800 points stay readable.
func lineWidth(n int) float64 {
	if n > 300 {
		return 1
	}
	return 2
}

func xTicks(o Options, ss []Series, xmin, xmax float64) []float64 {
	if o.XLog {
		// 1, 2, 5 × each power of ten; past 3 decades the labels would
		// touch, so powers of ten only.
		ms := []float64{1, 2, 5}
		if xmax/xmin > 1e3*(1+1e-9) {
			ms = ms[:1]
		}
		var ts []float64
		for e := xmin; e <= xmax*(1+1e-9); e *= 10 {
			for _, m := range ms {
				if x := m * e; x <= xmax*(1+1e-9) {
					ts = append(ts, x)
				}
			}
		}
		return ts
	}
	if !o.XTicksAtData {
		step := niceStep((xmax - xmin) / 8)
		var ts []float64
		for x := math.Ceil(xmin/step) * step; x <= xmax+step/1e6; x += step {
			ts = append(ts, x)
		}
		return ts
	}
	seen := map[float64]bool{}
	var ts []float64
	for _, s := range ss {
		for _, x := range s.X {
			if !seen[x] {
				seen[x] = true
				ts = append(ts, x)
			}
		}
	}
	if len(ts) > 12 { // keep labels apart
		step := (len(ts) + 11) / 12
		var kept []float64
		for i := 0; i < len(ts); i += step {
			kept = append(kept, ts[i])
		}
		ts = kept
	}
	return ts
}

// niceCeil is the smallest of 1, 2, 2.5, 5 × a power of ten that is ≥ v.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

// logFloor is the largest power of ten ≤ v.
func logFloor(v float64) float64 { return math.Pow(10, math.Floor(math.Log10(v))) }

// niceStep is a round step near v for axis ticks.
func niceStep(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	return niceCeil(v)
}

// Trim formats v with at most one decimal, without a trailing ".0".
func Trim(v float64) string {
	if math.Abs(v) < 1e-9 {
		v = 0 // no "-0"
	}
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", v), "0"), ".")
}
