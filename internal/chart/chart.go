// Package chart draws bar charts of counts over time as SVG, for pages that must work without
// scripts: one stacked bar per time step, a value axis with grid lines, time labels, a legend,
// and a <title> and <desc> for screen readers.
//
// The output depends only on the Chart given (no clock, no randomness, fixed colours), so
// the same data always gives the same bytes.
package chart

import (
	"fmt"
	"html"
	"html/template"
	"strconv"
	"strings"
	"time"
)

// Series is one kind of event counted per step.
type Series struct {
	Name   string  // a stable identifier, used in the CSS class of its bars
	Label  string  // what the legend and tooltips call it
	Values []int64 // one count per step, len(Chart.Times)
}

// Chart is a stacked bar chart of Series over time.
type Chart struct {
	ID     string      // the prefix of the SVG element ids, unique within the page
	Title  string      // the chart's accessible name
	Desc   string      // a longer description; the totals per series are appended
	Times  []time.Time // the start of each step, evenly spaced, oldest first
	Step   time.Duration
	Series []Series
	Loc    *time.Location // time labels are in this zone; nil is UTC
	Width  int            // 0: 720
	Height int            // 0: 280
}

// Colours of the series in order (Okabe–Ito, told apart with most colour vision
// deficiencies); series past the last take them again.
var colours = [...]string{"#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#000000"}

// Margins of the plot inside the SVG.
const (
	marginLeft   = 48
	marginRight  = 12
	marginTop    = 12
	marginBottom = 56 // time labels and the legend
	gridLines    = 4
)

// SVG returns the chart as an inline <svg> element. Every text in it is escaped.
func (c Chart) SVG() template.HTML {
	w, h := c.Width, c.Height
	if w <= 0 {
		w = 720
	}
	if h <= 0 {
		h = 280
	}
	loc := c.Loc
	if loc == nil {
		loc = time.UTC
	}
	n := len(c.Times)
	totals := make([]int64, n)
	sums := make([]int64, len(c.Series))
	for si, s := range c.Series {
		for i := 0; i < n && i < len(s.Values); i++ {
			if v := s.Values[i]; v > 0 {
				totals[i] += v
				sums[si] += v
			}
		}
	}
	var peak int64
	for _, t := range totals {
		peak = max(peak, t)
	}
	top := niceCeil(peak)
	plotW := float64(w - marginLeft - marginRight)
	plotH := float64(h - marginTop - marginBottom)
	baseY := float64(marginTop) + plotH
	y := func(v int64) float64 { return baseY - float64(v)/float64(top)*plotH }

	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" width="100%%" role="img" aria-labelledby="%s-title %s-desc" font-family="system-ui, sans-serif" font-size="11">`,
		w, h, esc(c.ID), esc(c.ID))
	fmt.Fprintf(&b, "\n<title id=\"%s-title\">%s</title>\n", esc(c.ID), esc(c.Title))
	desc := c.Desc
	var parts []string
	for si, s := range c.Series {
		parts = append(parts, s.Label+" "+strconv.FormatInt(sums[si], 10))
	}
	if len(parts) > 0 {
		desc = strings.TrimSpace(desc + " " + strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "<desc id=\"%s-desc\">%s</desc>\n", esc(c.ID), esc(desc))

	// Value axis: grid lines with their values.
	b.WriteString(`<g class="grid" stroke="#d8dde2" stroke-width="1">`)
	for i := 0; i <= gridLines; i++ {
		v := top * int64(i) / gridLines
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%s" y2="%s"/>`, marginLeft, w-marginRight, num(y(v)), num(y(v)))
	}
	b.WriteString("</g>\n<g class=\"yaxis\" fill=\"#5d6873\" text-anchor=\"end\">")
	for i := 0; i <= gridLines; i++ {
		v := top * int64(i) / gridLines
		fmt.Fprintf(&b, `<text x="%d" y="%s">%d</text>`, marginLeft-6, num(y(v)+4), v)
	}
	b.WriteString("</g>\n")

	// Bars: each step's series stacked in order, the first at the bottom.
	if n > 0 {
		slot := plotW / float64(n)
		barW := slot * 0.8
		if slot-barW > 4 {
			barW = slot - 4
		}
		for si, s := range c.Series {
			fmt.Fprintf(&b, `<g class="series series-%s" fill="%s">`, esc(s.Name), colours[si%len(colours)])
			for i := 0; i < n && i < len(s.Values); i++ {
				v := s.Values[i]
				if v <= 0 {
					continue
				}
				var below int64
				for _, prev := range c.Series[:si] {
					if i < len(prev.Values) && prev.Values[i] > 0 {
						below += prev.Values[i]
					}
				}
				x := float64(marginLeft) + float64(i)*slot + (slot-barW)/2
				y1, y0 := y(below+v), y(below)
				fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s"><title>%s %s: %d</title></rect>`,
					num(x), num(y1), num(barW), num(y0-y1), esc(c.Times[i].In(loc).Format(c.timeFormat())), esc(s.Label), v)
			}
			b.WriteString("</g>\n")
		}
	}

	// Time axis: the base line and about six labels at even steps.
	fmt.Fprintf(&b, `<line class="xaxis" x1="%d" x2="%d" y1="%s" y2="%s" stroke="#5d6873" stroke-width="1"/>`,
		marginLeft, w-marginRight, num(baseY), num(baseY))
	b.WriteString("\n<g class=\"xlabels\" fill=\"#5d6873\" text-anchor=\"middle\">")
	if n > 0 {
		every := max(1, (n+5)/6)
		slot := plotW / float64(n)
		for i := 0; i < n; i += every {
			x := float64(marginLeft) + float64(i)*slot
			fmt.Fprintf(&b, `<text x="%s" y="%s">%s</text>`, num(x), num(baseY+16), esc(c.Times[i].In(loc).Format(c.timeFormat())))
		}
	}
	b.WriteString("</g>\n")

	// Legend, in one row under the time labels.
	b.WriteString(`<g class="legend">`)
	lx := float64(marginLeft)
	ly := float64(h - 14)
	legendStep := plotW / float64(max(1, len(c.Series)))
	for si, s := range c.Series {
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="10" height="10" fill="%s"/><text x="%s" y="%s">%s</text>`,
			num(lx), num(ly-9), colours[si%len(colours)], num(lx+14), num(ly), esc(s.Label))
		lx += legendStep
	}
	b.WriteString("</g>\n</svg>")
	return template.HTML(b.String())
}

// timeFormat is the layout of time labels: the hour and minute for charts of up to two days,
// the date and hour beyond.
func (c Chart) timeFormat() string {
	if len(c.Times) > 1 && c.Times[len(c.Times)-1].Sub(c.Times[0]) > 48*time.Hour {
		return "01/02 15h"
	}
	return "15:04"
}

// niceCeil is the smallest of 1, 2, 4, 5, 8 × 10^k that is at least v and divisible into the grid
// lines (4 at least, so an empty chart still has an axis).
func niceCeil(v int64) int64 {
	if v <= gridLines {
		return gridLines
	}
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 4, 5, 8} {
			if c := m * p; c >= v && c%gridLines == 0 {
				return c
			}
		}
	}
}

// num formats a coordinate with at most one decimal.
func num(f float64) string {
	return strconv.FormatFloat(float64(int64(f*10+0.5))/10, 'f', -1, 64)
}
