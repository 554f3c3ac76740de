package admin

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/stats"
	"github.com/sekisho/sekisho/internal/store"
)

// The overview of a week with a count in every minute for every decision (60,480 rows),
// fetched over HTTPS as an admin: the store query, the summing and the SVG.
func BenchmarkOverviewWeek(b *testing.B) {
	s := newSite(b, "127.0.0.0/8")
	m := store.Minute(time.Now())
	var counts []store.StatCount
	for i := range 7 * 24 * 60 {
		for j, name := range stats.Decisions() {
			counts = append(counts, store.StatCount{Bucket: m.Add(-time.Duration(i) * time.Minute), Name: name, Count: int64(i%13 + j)})
		}
	}
	if err := s.store.AddStats(context.Background(), counts); err != nil {
		b.Fatal(err)
	}
	root := s.login(b, rootUser)
	for b.Loop() {
		if code, _ := s.get(b, root, "/admin/?range=week", "en"); code != http.StatusOK {
			b.Fatalf("overview: %d", code)
		}
	}
}
