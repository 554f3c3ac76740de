package admin

import (
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

type nodeRow struct {
	ID, Version        string
	Started, Heartbeat time.Time
	Age                time.Duration // since the last heartbeat, rounded to the second
	Stale              bool          // silent for more than three heartbeat intervals
	Counters           []nodeCounter
}

type nodeCounter struct {
	Name  string
	Value int64
}

type nodesData struct {
	Registry bool
	Rows     []nodeRow
	Interval time.Duration
}

// StaleAfter is how many heartbeat intervals a node may miss before it is flagged.
const StaleAfter = 3

func (a *Admin) nodes(w http.ResponseWriter, r *http.Request) {
	d := nodesData{Registry: a.o.Registry != nil, Interval: a.o.Heartbeat}
	if a.o.Registry != nil {
		nodes, err := a.o.Registry.Nodes(r.Context())
		if err != nil {
			a.fail(w, r, "nodes", err)
			return
		}
		now := a.o.Now()
		for _, n := range nodes {
			row := nodeRow{ID: n.ID, Version: n.Version, Started: n.Started, Heartbeat: n.Heartbeat,
				Age: now.Sub(n.Heartbeat).Round(time.Second), Stale: now.Sub(n.Heartbeat) > StaleAfter*a.o.Heartbeat}
			for _, k := range slices.Sorted(maps.Keys(n.Counters)) {
				row.Counters = append(row.Counters, nodeCounter{k, n.Counters[k]})
			}
			d.Rows = append(d.Rows, row)
		}
	}
	a.render(w, r, http.StatusOK, "nodes.html", d, "", "")
}

type trapsData struct {
	Rows []store.TrapHit
	Page pager
}

// traps lists mail sent to harvest-trap addresses with the visit that harvested each.
func (a *Admin) traps(w http.ResponseWriter, r *http.Request) {
	off := offset(r)
	rows, err := a.o.Store.TrapHits(r.Context(), PageSize+1, off)
	if err != nil {
		a.fail(w, r, "trap hits", err)
		return
	}
	d := trapsData{Rows: rows[:min(len(rows), PageSize)], Page: page(r, off, len(rows))}
	a.render(w, r, http.StatusOK, "traps.html", d, "", "")
}
