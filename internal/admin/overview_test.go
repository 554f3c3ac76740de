package admin

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/store"
)

// steps sums minute buckets into aligned steps: the last step holds now, the first starts a
// window earlier, buckets outside are left out, names not asked for are ignored.
func TestSteps(t *testing.T) {
	s := newSite(t, "127.0.0.0/8")
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 10, 7, 30, 0, time.UTC)
	day := spans[1]
	since := time.Date(2026, 11, 21, 10, 15, 0, 0, time.UTC) // until 10:15 today, 96 steps of 15 min
	add := []store.StatCount{
		{Bucket: since.Add(-time.Minute), Name: "pass", Count: 1000}, // before the window
		{Bucket: since, Name: "pass", Count: 1},
		{Bucket: since.Add(14 * time.Minute), Name: "pass", Count: 2},
		{Bucket: since.Add(15 * time.Minute), Name: "pass", Count: 4},
		{Bucket: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Name: "held", Count: 8},
		{Bucket: time.Date(2026, 11, 22, 10, 7, 0, 0, time.UTC), Name: "held", Count: 16},
		{Bucket: time.Date(2026, 11, 22, 10, 7, 0, 0, time.UTC), Name: "other", Count: 32},
		{Bucket: time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC), Name: "held", Count: 64}, // after
	}
	if err := s.store.AddStats(ctx, add); err != nil {
		t.Fatal(err)
	}
	var cache stepCache
	times, values, err := cache.steps(ctx, s.store, []string{"pass", "held"}, day, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(times) != 96 || !times[0].Equal(since) || !times[95].Equal(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("times: %d from %v to %v", len(times), times[0], times[len(times)-1])
	}
	var sumPass, sumHeld int64
	for i := range 96 {
		sumPass += values[0][i]
		sumHeld += values[1][i]
	}
	if values[0][0] != 3 || values[0][1] != 4 || sumPass != 7 || values[1][95] != 24 || sumHeld != 24 {
		t.Fatalf("pass %v (sum %d), held last %d (sum %d)", values[0][:3], sumPass, values[1][95], sumHeld)
	}

	// Settled steps (ended Settle ago) come from the cache; the open step is read again.
	more := []store.StatCount{
		{Bucket: since, Name: "pass", Count: 100},                      // settled step 0
		{Bucket: since.Add(15 * time.Minute), Name: "pass", Count: 50}, // settled step 1
		{Bucket: time.Date(2026, 11, 22, 10, 7, 0, 0, time.UTC), Name: "held", Count: 1},
	}
	if err := s.store.AddStats(ctx, more); err != nil {
		t.Fatal(err)
	}
	_, values, err = cache.steps(ctx, s.store, []string{"pass", "held"}, day, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if values[0][0] != 3 || values[0][1] != 4 || values[1][95] != 25 {
		t.Fatalf("second read: pass %v, held last %d; want settled steps as cached, the open one read again", values[0][:2], values[1][95])
	}
	// The next step starts: the chart moves on by one step and is read afresh.
	times, values, err = cache.steps(ctx, s.store, []string{"pass", "held"}, day, now.Add(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !times[0].Equal(since.Add(15*time.Minute)) || values[0][0] != 54 || values[1][94] != 25 {
		t.Fatalf("next step: from %v pass %d held %d, want from %v pass 54 held 25", times[0], values[0][0], values[1][94], since.Add(15*time.Minute))
	}
}

// The overview's chart and totals for each range show the counts stored for that range.
func TestOverviewChartWithData(t *testing.T) {
	t.Parallel()
	s := newSite(t, "127.0.0.0/8")
	now := time.Now()
	ctx := context.Background()
	m := store.Minute(now)
	add := []store.StatCount{
		{Bucket: m.Add(-5 * time.Minute), Name: "pass", Count: 7},
		{Bucket: m.Add(-5 * time.Minute), Name: "held", Count: 2},
		{Bucket: m.Add(-30 * time.Minute), Name: "decoy", Count: 3},
		{Bucket: m.Add(-3 * time.Hour), Name: "pass", Count: 11},
		{Bucket: m.Add(-3 * 24 * time.Hour), Name: "relay_refused", Count: 4},
		{Bucket: m.Add(-3 * 24 * time.Hour), Name: "proxy_refused", Count: 5},
		{Bucket: m.Add(-8 * 24 * time.Hour), Name: "pass", Count: 100},
		{Bucket: m, Name: "confirmed", Count: 1},
	}
	if err := s.store.AddStats(ctx, add); err != nil {
		t.Fatal(err)
	}
	root := s.login(t, rootUser)
	want := map[string]map[string]int64{
		"hour": {"pass": 7, "held": 2, "confirmed": 1, "decoy": 3, "relay_refused": 0, "proxy_refused": 0},
		"day":  {"pass": 18, "held": 2, "confirmed": 1, "decoy": 3, "relay_refused": 0, "proxy_refused": 0},
		"week": {"pass": 18, "held": 2, "confirmed": 1, "decoy": 3, "relay_refused": 4, "proxy_refused": 5},
	}
	bars := regexp.MustCompile(`<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+"><title>[^<]*: (\d+)</title></rect>`)
	for rng, totals := range want {
		code, body := s.get(t, root, "/admin/?range="+rng, "en")
		if code != http.StatusOK {
			t.Fatalf("range %s: %d", rng, code)
		}
		var nonzero int
		for name, n := range totals {
			row := fmt.Sprintf("<tr><td>%s</td><td>%d</td></tr>", texts["en"]["dec_"+name], n)
			if !strings.Contains(body, row) {
				t.Errorf("range %s: no total row %q", rng, row)
			}
			if n > 0 {
				nonzero++
			}
		}
		var sum int64
		found := bars.FindAllStringSubmatch(body, -1)
		for _, b := range found {
			var v int64
			fmt.Sscan(b[1], &v)
			sum += v
		}
		var wantSum int64
		for _, n := range totals {
			wantSum += n
		}
		if sum != wantSum || len(found) < nonzero {
			t.Errorf("range %s: %d bars summing to %d, want %d", rng, len(found), sum, wantSum)
		}
		if !strings.Contains(body, `<strong aria-current="true">`) {
			t.Errorf("range %s: the chosen range is not marked", rng)
		}
	}
	// In Japanese the legend and title are Japanese.
	_, body := s.get(t, root, "/admin/?range=day", "ja")
	if !strings.Contains(body, "直近1日の判定") || !strings.Contains(body, ">おとり命中</text>") {
		t.Error("ja chart lacks its Japanese title or legend")
	}
}
