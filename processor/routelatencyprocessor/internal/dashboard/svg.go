package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// Charts are drawn on the server as SVG: the page needs no script library and works offline.
const (
	chartWidth, chartHeight = 760.0, 220.0
	padLeft, padBottom      = 56.0, 24.0
	padTop, padRight        = 12.0, 12.0
)

type line struct {
	label, color string
	value        func(Point) float64
}

// axis places slices on a time axis covering the whole window, so that gaps without traffic show as gaps.
type axis struct {
	from  time.Time
	width time.Duration // the window
	slice time.Duration
}

func (a axis) x(t time.Time) float64 {
	span := chartWidth - padLeft - padRight
	return padLeft + span*(float64(t.Sub(a.from))+float64(a.slice)/2)/float64(a.width)
}

func (a axis) barWidth() float64 {
	return max((chartWidth-padLeft-padRight)*float64(a.slice)/float64(a.width)*0.8, 1)
}

// latencyChart draws p50, p95 and p99 (milliseconds) per slice, a dot on each slice and a line between them.
func latencyChart(points []Point, a axis) template.HTML {
	lines := []line{
		{"p50", "#2b7bb9", func(p Point) float64 { return millis(p.P50) }},
		{"p95", "#e08a1e", func(p Point) float64 { return millis(p.P95) }},
		{"p99", "#c0392b", func(p Point) float64 { return millis(p.P99) }},
	}
	top := 0.0
	for _, p := range points {
		top = max(top, millis(p.P99))
	}
	var b strings.Builder
	open(&b, "latency", "ms", top, a)
	for _, l := range lines {
		var coords []string
		for _, p := range points {
			px, py := a.x(p.Start), y(l.value(p), top)
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", px, py))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %.1f ms at %s</title></circle>`,
				px, py, l.color, l.label, l.value(p), p.Start.Format("15:04:05"))
		}
		fmt.Fprintf(&b, `<polyline class="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, l.label, l.color, strings.Join(coords, " "))
	}
	legend(&b, lines)
	b.WriteString("</svg>")
	return template.HTML(b.String()) //nolint:gosec // built from numbers and constants only
}

// countChart draws requests and errors per slice as bars.
func countChart(points []Point, a axis) template.HTML {
	top := 0.0
	for _, p := range points {
		top = max(top, float64(p.Requests))
	}
	var b strings.Builder
	open(&b, "requests and errors", "requests", top, a)
	w := a.barWidth()
	for _, p := range points {
		cx := a.x(p.Start)
		fmt.Fprintf(&b, `<rect class="requests" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#9aa7b4"/>`,
			cx-w/2, y(float64(p.Requests), top), w, chartHeight-padBottom-y(float64(p.Requests), top))
		fmt.Fprintf(&b, `<rect class="errors" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#c0392b"/>`,
			cx-w/2, y(float64(p.Errors), top), w, chartHeight-padBottom-y(float64(p.Errors), top))
	}
	legend(&b, []line{{"requests", "#9aa7b4", nil}, {"errors", "#c0392b", nil}})
	b.WriteString("</svg>")
	return template.HTML(b.String()) //nolint:gosec // built from numbers and constants only
}

func open(b *strings.Builder, title, unit string, top float64, a axis) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f">`,
		title, chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="#fafbfc" stroke="#d0d7de"/>`,
		padLeft, padTop, chartWidth-padLeft-padRight, chartHeight-padTop-padBottom)
	for _, f := range []float64{0, 0.5, 1} {
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" font-size="11" text-anchor="end" fill="#57606a">%s</text>`,
			padLeft-6, y(top*f, top)+4, formatTick(top*f, unit))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="11" fill="#57606a">%s</text>`, padLeft, chartHeight-6, a.from.Format("15:04:05"))
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="end" fill="#57606a">%s</text>`,
		chartWidth-padRight, chartHeight-6, a.from.Add(a.width).Format("15:04:05"))
}

func legend(b *strings.Builder, lines []line) {
	for i, l := range lines {
		lx := padLeft + 10 + float64(i)*90
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="12" height="4" fill="%s"/><text x="%.0f" y="%.0f" font-size="11" fill="#24292f">%s</text>`,
			lx, padTop+8, l.color, lx+16, padTop+13, l.label)
	}
}

func formatTick(v float64, unit string) string {
	if unit == "ms" {
		return fmt.Sprintf("%.4g ms", v)
	}
	return fmt.Sprintf("%.4g", v)
}

func y(v, top float64) float64 {
	if top <= 0 {
		return chartHeight - padBottom
	}
	return chartHeight - padBottom - (chartHeight-padTop-padBottom-16)*v/top
}
