package challenge

import (
	"testing"
	"time"
)

// A flood from many addresses must leave nothing behind once its hour is over.
func TestMemCounterForgets(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	c := NewMemCounter()
	for i := range 1000 {
		c.Add(ctx, "ip:"+string(rune('a'+i%26))+string(rune(i)), t0.Add(time.Duration(i)*time.Millisecond))
	}
	c.Add(ctx, "all", t0.Add(2*Window))
	if n := len(c.events); n != 1 {
		t.Errorf("%d keys kept after a quiet hour, want 1", n)
	}
	if n, _ := c.Count(ctx, "all", t0); n != 1 {
		t.Errorf("Count(all) = %d, want 1", n)
	}
}
