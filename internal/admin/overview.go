package admin

import (
	"context"
	"html/template"
	"net/http"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/chart"
	"github.com/sekisho/sekisho/internal/stats"
	"github.com/sekisho/sekisho/internal/store"
)

// span is a chart range: how far back it looks and the width of one bar.
type span struct {
	Name   string
	Window time.Duration
	Step   time.Duration
}

// spans are the chart ranges, ?range= picks one.
var spans = []span{
	{"hour", time.Hour, time.Minute},
	{"day", 24 * time.Hour, 15 * time.Minute},
	{"week", 7 * 24 * time.Hour, 2 * time.Hour},
}

type counter struct {
	Key     string // catalog key of its name
	Value   int64
	Bytes   bool // Value is a size in bytes
	Unknown bool // the store could not tell
	Link    string
}

type total struct {
	Key   string
	Count int64
}

type overviewData struct {
	Counters []counter
	Range    string
	Ranges   []string
	Chart    template.HTML
	Totals   []total
}

func (a *Admin) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sp := spans[0]
	for _, s := range spans {
		if s.Name == r.URL.Query().Get("range") {
			sp = s
		}
	}
	d := overviewData{Range: sp.Name}
	for _, s := range spans {
		d.Ranges = append(d.Ranges, s.Name)
	}
	d.Counters = a.counters(ctx)
	now := a.o.Now()
	decisions := stats.Decisions()
	times, values, err := a.cache.steps(ctx, a.o.Store, decisions, sp, now)
	if err != nil {
		a.fail(w, r, "stats", err)
		return
	}
	c := chart.Chart{ID: "decisions", Title: text(r, "ov_chart_"+sp.Name), Desc: text(r, "ov_chart_desc"),
		Times: times, Step: sp.Step, Loc: time.Local}
	for i, name := range decisions {
		c.Series = append(c.Series, chart.Series{Name: name, Label: text(r, "dec_"+name), Values: values[i]})
		var sum int64
		for _, v := range values[i] {
			sum += v
		}
		d.Totals = append(d.Totals, total{Key: "dec_" + name, Count: sum})
	}
	d.Chart = c.SVG()
	a.render(w, r, http.StatusOK, "overview.html", d, flash(r), "")
}

// counters are the live figures of the overview; one the store cannot tell now shows "-".
func (a *Admin) counters(ctx context.Context) []counter {
	var out []counter
	if a.o.Lists != nil {
		sizes := a.o.Lists.Sizes()
		for _, l := range store.Lists {
			out = append(out, counter{Key: "list_" + string(l), Value: int64(sizes[l]), Link: "/admin/lists/" + string(l)})
		}
	}
	held, bytes, err := a.o.Store.HeldStats(ctx)
	if err != nil {
		a.o.Log.Warn("admin overview: held stats", "err", err)
	}
	out = append(out, counter{Key: "ov_held", Value: int64(held), Unknown: err != nil, Link: "/admin/held"},
		counter{Key: "ov_held_bytes", Value: bytes, Bytes: true, Unknown: err != nil})
	depth, err := a.o.Store.OutboxLen(ctx)
	if err != nil {
		a.o.Log.Warn("admin overview: outbox depth", "err", err)
	}
	out = append(out, counter{Key: "ov_outbox", Value: int64(depth), Unknown: err != nil})
	if a.o.Registry != nil {
		nodes, err := a.o.Registry.Nodes(ctx)
		if err != nil {
			a.o.Log.Warn("admin overview: nodes", "err", err)
		}
		out = append(out, counter{Key: "ov_nodes", Value: int64(len(nodes)), Unknown: err != nil, Link: "/admin/nodes"})
	}
	return out
}

// Settle is how long after a minute the counts of that minute are taken as final: every
// node's recorder has written them by then.
const Settle = 2 * time.Minute

// stepCache keeps, per chart range, the sums of the steps whose counts are final, so that a
// chart asks the store only for the steps since (a week of minutes is 60,480 rows; the steps
// still open are a few hundred).
type stepCache struct {
	mu     sync.Mutex
	byName map[string]cachedSteps
}

type cachedSteps struct {
	since   time.Time // the first step of the chart these sums belong to
	settled int       // steps [0, settled) are final and summed in values
	values  [][]int64
}

// steps sums the per-minute counts of names over the span ending now into its steps, zeros
// where nothing was counted. Steps are aligned to multiples of the step (the last one is the
// step now is in), times are their starts, values[i] the counts of names[i]. Steps that
// ended Settle ago or more are read from the store once and then kept.
func (c *stepCache) steps(ctx context.Context, st store.Store, names []string, sp span, now time.Time) ([]time.Time, [][]int64, error) {
	n := int(sp.Window / sp.Step)
	until := now.Truncate(sp.Step).Add(sp.Step)
	since := until.Add(-time.Duration(n) * sp.Step)
	times := make([]time.Time, n)
	for i := range times {
		times[i] = since.Add(time.Duration(i) * sp.Step)
	}
	values := make([][]int64, len(names))
	for i := range names {
		values[i] = make([]int64, n)
	}
	from := 0 // the first step to read from the store
	c.mu.Lock()
	if old, ok := c.byName[sp.Name]; ok && old.since.Equal(since) && len(old.values) == len(names) {
		for i := range names {
			copy(values[i][:old.settled], old.values[i])
		}
		from = old.settled
	}
	c.mu.Unlock()
	counts, err := st.Stats(ctx, times[from], until)
	if err != nil {
		return nil, nil, err
	}
	index := map[string]int{}
	for i, name := range names {
		index[name] = i
	}
	for _, sc := range counts {
		si, ok := index[sc.Name]
		k := int(sc.Bucket.Sub(since) / sp.Step)
		if ok && k >= from && k < n {
			values[si][k] += sc.Count
		}
	}
	settled := min(n, max(0, int(now.Add(-Settle).Sub(since)/sp.Step)))
	keep := cachedSteps{since: since, settled: settled, values: make([][]int64, len(names))}
	for i := range names {
		keep.values[i] = append([]int64(nil), values[i][:settled]...)
	}
	c.mu.Lock()
	if c.byName == nil {
		c.byName = map[string]cachedSteps{}
	}
	c.byName[sp.Name] = keep
	c.mu.Unlock()
	return times, values, nil
}
