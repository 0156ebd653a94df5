package gossip

import (
	"testing"
	"time"
)

// TestAuthorBudgetsFollowStanding: an author's bucket takes the rate and
// burst of its standing when first seen, and is refitted when the standing
// changes: lowered, at once; raised, from then on.
func TestAuthorBudgetsFollowStanding(t *testing.T) {
	b := newAuthorBudgets()
	key := [32]byte{1}
	t0 := time.Unix(1e9, 0)
	low, lower, high := Standing{Rate: 1, Burst: 3}, Standing{Rate: 1, Burst: 1}, Standing{Rate: 100, Burst: 50}
	for i, step := range []struct {
		s    Standing
		at   time.Duration // after t0
		n    int           // announcements
		want int           // of them allowed
	}{
		{low, 0, 4, 3},                                        // a burst of 3
		{low, 10 * time.Second, 5, 3},                         // refilled to the burst, no further
		{lower, 20 * time.Second, 3, 1},                       // lowered: the burst of 1 at once
		{high, 21 * time.Second, 1, 1},                        // the second before accrued at the old rate
		{high, 21*time.Second + 100*time.Millisecond, 20, 10}, // a tenth of a second at 100 a second
		{high, time.Minute, 60, 50},                           // refilled to the new burst
	} {
		at := t0.Add(step.at)
		got := 0
		for range step.n {
			if !b.spent(key, step.s, at) && b.allow(key, step.s, at) {
				got++
			}
		}
		if got != step.want {
			t.Errorf("step %d: %d of %d allowed; want %d", i, got, step.n, step.want)
		}
	}
}
