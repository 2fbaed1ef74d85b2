package main

import (
	"fmt"
	"html"
	"math"
	"runtime"
	"sort"
	"strings"

	"github.com/wsforge/terraform-aws-websocket/bench"
)

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }
func numCPU() int     { return runtime.NumCPU() }

// rateChart draws the achieved share of the rate limit against N (log scale)
// for each strategy, as a self-contained SVG.
// ceiling, when positive, is drawn as a dashed line: the machine's own
// ceiling in calls per second.
func rateChart(rows []row, limit, ceiling float64) string {
	const (
		w, h                   = 640, 400
		left, right, top, bott = 70, 160, 40, 60
	)
	series := map[bench.Strategy][][2]float64{}
	var ns []float64
	yMax := 1.0
	for _, r := range rows {
		y := r.Rate / limit
		series[r.Strategy] = append(series[r.Strategy], [2]float64{float64(r.N), y})
		ns = append(ns, float64(r.N))
		yMax = math.Max(yMax, y)
	}
	yMax = math.Max(yMax, ceiling/limit)
	yMax = math.Ceil(yMax*10) / 10
	sort.Float64s(ns)
	if len(ns) == 0 {
		ns = []float64{1, 10}
	}
	xMin, xMax := math.Log10(ns[0]), math.Log10(ns[len(ns)-1])
	if xMax == xMin {
		xMin, xMax = xMin-0.5, xMax+0.5
	}
	px := func(n float64) float64 {
		return left + (math.Log10(n)-xMin)/(xMax-xMin)*float64(w-left-right)
	}
	py := func(y float64) float64 { return float64(h-bott) - y/yMax*float64(h-top-bott) }
	colors := map[bench.Strategy]string{bench.Sequential: "#d62728", bench.AllAtOnce: "#ff7f0e", bench.Ours: "#1f77b4"}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">Accepted calls per second as a share of the %.0f/s limit</text>`+"\n", left, limit)
	for y := 0.0; y <= yMax+1e-9; y += 0.2 {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(y), w-right, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n", left-6, py(y)+4, y*100)
	}
	seen := map[float64]bool{}
	for _, n := range ns {
		if seen[n] {
			continue
		}
		seen[n] = true
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px(n), top, px(n), h-bott)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">N = %s</text>`+"\n", px(n), h-bott+18, groupDigits(int(n)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">recipients in the channel (log scale)</text>`+"\n", (left+w-right)/2, h-14)
	ly := top + 10
	if ceiling > 0 {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#555" stroke-dasharray="6 4"/>`+"\n", left, py(ceiling/limit), w-right, py(ceiling/limit))
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#555" stroke-dasharray="6 4"/><text x="%d" y="%d">machine ceiling</text>`+"\n", w-right+12, ly, w-right+32, ly, w-right+38, ly+4)
		ly += 20
	}
	for _, st := range bench.Strategies {
		pts := series[st]
		if len(pts) == 0 {
			continue
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i][0] < pts[j][0] })
		var path []string
		for _, p := range pts {
			path = append(path, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		c := colors[st]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(path, " "))
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s N=%d: %.1f%%</title></circle>`+"\n", px(p[0]), py(p[1]), c, html.EscapeString(string(st)), int(p[0]), p[1]*100)
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>`+"\n", w-right+12, ly, w-right+32, ly, c, w-right+38, ly+4, html.EscapeString(string(st)))
		ly += 20
		if st == bench.Sequential {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10">(time-boxed prefix)</text>`+"\n", w-right+38, ly-4)
			ly += 10
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func groupDigits(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
