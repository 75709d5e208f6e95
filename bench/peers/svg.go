package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

type series struct {
	name string
	x, y []float64
}

// lineChart draws series as an SVG line chart with markers and a legend.
func lineChart(title, xlabel, ylabel string, ss []series, markersOnly bool) string {
	const W, H, L, R, T, B = 720.0, 420.0, 70.0, 170.0, 40.0, 50.0
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), 0.0, 0.0
	for _, s := range ss {
		for i := range s.x {
			xmin, xmax = min(xmin, s.x[i]), max(xmax, s.x[i])
			ymin, ymax = min(ymin, s.y[i]), max(ymax, s.y[i])
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	ymax = niceCeil(ymax * 1.1)
	if ymin < 0 { // noise can make an overhead negative
		ymin = -niceCeil(-ymin * 1.1)
	}
	px := func(x float64) float64 { return L + (x-xmin)/(xmax-xmin)*(W-L-R) }
	py := func(y float64) float64 { return H - B - (y-ymin)/(ymax-ymin)*(H-T-B) }
	var b strings.Builder
	f := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	f(`<text x="%g" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", (W-R+L)/2, html.EscapeString(title))
	for i := 0; i <= 5; i++ {
		y := ymin + (ymax-ymin)*float64(i)/5
		f(`<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", L, py(y), W-R, py(y))
		f(`<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", L-6, py(y)+4, trim(y))
	}
	xs := map[float64]bool{}
	for _, s := range ss {
		for _, x := range s.x {
			xs[x] = true
		}
	}
	step := 1
	if len(xs) > 12 {
		step = (len(xs) + 11) / 12
	}
	i := 0
	for x := xmin; x <= xmax; x++ {
		if xs[x] && i%step == 0 {
			f(`<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(x), H-B+16, trim(x))
		}
		i++
	}
	f(`<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="black"/>`+"\n", L, py(0), W-R, py(0))
	f(`<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", L, T, L, H-B)
	f(`<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", (W-R+L)/2, H-10, html.EscapeString(xlabel))
	f(`<text transform="translate(16 %g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (H-B+T)/2, html.EscapeString(ylabel))
	for k, s := range ss {
		c := colors[k%len(colors)]
		var pts []string
		for j := range s.x {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.x[j]), py(s.y[j])))
		}
		f(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		if markersOnly {
			for j := range s.x {
				f(`<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s N=%s: %.1f</title></circle>`+"\n", px(s.x[j]), py(s.y[j]), c, html.EscapeString(s.name), trim(s.x[j]), s.y[j])
			}
		}
		ly := T + 20 + float64(k)*20
		f(`<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"/>`+"\n", W-R+15, ly-4, W-R+35, ly-4, c)
		f(`<text x="%g" y="%g">%s</text>`+"\n", W-R+40, ly, html.EscapeString(s.name))
	}
	f("</svg>\n")
	return b.String()
}

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

func trim(v float64) string {
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", v), "0"), ".")
}
