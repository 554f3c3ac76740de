package chart

import (
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// element is an SVG element as parsed back.
type element struct {
	Name  string
	Attrs map[string]string
	Text  string
	Path  []string // names of the enclosing elements
}

// parse decodes svg as XML (so it must be well formed) and returns every element.
func parse(t *testing.T, svg string) []element {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	var out []element
	var stack []int
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well formed: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := element{Name: tok.Name.Local, Attrs: map[string]string{}}
			for _, i := range stack {
				e.Path = append(e.Path, out[i].Name)
			}
			for _, a := range tok.Attr {
				e.Attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
			stack = append(stack, len(out)-1)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				out[stack[len(stack)-1]].Text += string(tok)
			}
		}
	}
	return out
}

func attr(t *testing.T, e element, name string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(e.Attrs[name], 64)
	if err != nil {
		t.Fatalf("%s %s=%q: %v", e.Name, name, e.Attrs[name], err)
	}
	return f
}

func testChart() Chart {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var times []time.Time
	for i := range 12 {
		times = append(times, t0.Add(time.Duration(i)*5*time.Minute))
	}
	return Chart{
		ID: "c1", Title: "Decisions <last hour>", Desc: "per 5 minutes:", Times: times, Step: 5 * time.Minute,
		Series: []Series{
			{Name: "pass", Label: "pass", Values: []int64{10, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 5}},
			{Name: "held", Label: "held & co", Values: []int64{10, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		},
	}
}

// The bars: one rect per non-zero count, stacked in series order, heights proportional to
// the counts on a scale whose top is the next round number over the tallest stack.
func TestBarsStackedAndScaled(t *testing.T) {
	c := testChart()
	els := parse(t, string(c.SVG()))
	var bars []element
	for _, e := range els {
		if e.Name == "rect" && len(e.Path) >= 2 && e.Path[len(e.Path)-1] == "g" {
			if _, ok := e.Attrs["width"]; ok && e.Attrs["fill"] == "" {
				bars = append(bars, e)
			}
		}
	}
	if len(bars) != 5 {
		t.Fatalf("%d bars, want 5 (one per non-zero count)", len(bars))
	}
	// Tallest stack 40 → scale top 40; plot height 280-12-56 = 212.
	const plotH, baseY = 212.0, 224.0
	want := []struct {
		bottom, value float64
	}{{0, 10}, {0, 30}, {0, 5}, {10, 10}, {30, 10}} // pass bars first, then held on top of them
	for i, b := range bars {
		h := attr(t, b, "height")
		y := attr(t, b, "y")
		wantH := want[i].value / 40 * plotH
		wantY := baseY - (want[i].bottom+want[i].value)/40*plotH
		if diff := h - wantH; diff > 0.11 || diff < -0.11 {
			t.Errorf("bar %d height %v, want %v", i, h, wantH)
		}
		if diff := y - wantY; diff > 0.11 || diff < -0.11 {
			t.Errorf("bar %d y %v, want %v", i, y, wantY)
		}
	}
	if bars[0].Attrs["x"] != bars[3].Attrs["x"] || bars[1].Attrs["x"] != bars[4].Attrs["x"] || bars[2].Attrs["x"] == bars[0].Attrs["x"] {
		t.Error("stacked bars of one step are not at the same x")
	}
}

// Accessibility and escaping: the svg names its title and description, which carry the
// totals; every text is escaped; the legend names each series; time labels are there.
func TestTitleDescLegendLabels(t *testing.T) {
	c := testChart()
	svg := string(c.SVG())
	if strings.Contains(svg, "<last hour>") || strings.Contains(svg, "held & co") {
		t.Fatal("unescaped text in the SVG")
	}
	els := parse(t, svg)
	root := els[0]
	if root.Name != "svg" || root.Attrs["role"] != "img" || root.Attrs["aria-labelledby"] != "c1-title c1-desc" {
		t.Fatalf("root element %+v", root)
	}
	texts := map[string]string{}
	var legend []string
	for _, e := range els {
		switch {
		case e.Name == "title" && e.Attrs["id"] != "":
			texts["title"] = e.Text
		case e.Name == "desc":
			texts["desc"] = e.Text
		}
		if e.Name == "text" {
			legend = append(legend, e.Text)
		}
	}
	if texts["title"] != "Decisions <last hour>" {
		t.Errorf("title %q", texts["title"])
	}
	if texts["desc"] != "per 5 minutes: pass 45, held & co 20" {
		t.Errorf("desc %q, want the totals", texts["desc"])
	}
	joined := strings.Join(legend, "|")
	for _, want := range []string{"10:00", "10:10", "10:50", "|pass|held & co", "|0|10|20|30|40|"} {
		if !strings.Contains("|"+joined+"|", want) {
			t.Errorf("texts %q lack %q", joined, want)
		}
	}
}

// The same input gives the same bytes; a different input does not.
func TestDeterministic(t *testing.T) {
	a, b := testChart().SVG(), testChart().SVG()
	if a != b {
		t.Fatal("two renderings of one chart differ")
	}
	c := testChart()
	c.Series[0].Values[3] = 1
	if c.SVG() == a {
		t.Fatal("a changed count gave the same SVG")
	}
}

// No data at all still draws axes (no division by zero, no NaN).
func TestEmpty(t *testing.T) {
	c := testChart()
	c.Series[0].Values = make([]int64, 12)
	c.Series[1].Values = nil
	svg := string(c.SVG())
	if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
		t.Fatalf("bad number in %s", svg)
	}
	parse(t, svg)
	empty := Chart{ID: "e", Title: "none"}
	parse(t, string(empty.SVG()))
}

func TestWeekLabelsShowDates(t *testing.T) {
	t0 := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	var times []time.Time
	for i := range 84 {
		times = append(times, t0.Add(time.Duration(i)*2*time.Hour))
	}
	jst := time.FixedZone("JST", 9*3600)
	svg := string(Chart{ID: "w", Title: "week", Times: times, Step: 2 * time.Hour, Loc: jst}.SVG())
	if !strings.Contains(svg, ">11/15 09h<") {
		t.Errorf("week chart has no date label in the chart's zone: %s", svg)
	}
}

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ in, want int64 }{{0, 4}, {3, 4}, {5, 8}, {9, 20}, {40, 40}, {41, 80}, {99, 100}, {101, 200}, {4001, 5000}, {5001, 8000}} {
		if got := niceCeil(c.in); got != c.want {
			t.Errorf("niceCeil(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
