package startuptrace

import (
	"strings"
	"testing"
)

func TestMarksPrintInOrderOnlyWhenEnabled(t *testing.T) {
	was := enabled
	t.Cleanup(func() { enabled, marks = was, nil })

	enabled, marks = false, nil
	Mark("off")
	if len(marks) != 0 {
		t.Fatalf("recorded %d marks while disabled", len(marks))
	}

	enabled = true
	Mark("a")
	Mark("b")
	var out strings.Builder
	Print(&out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "phase a at CLOCK_MONOTONIC ") || !strings.Contains(lines[1], "phase b at") {
		t.Fatalf("printed %q", out.String())
	}
	if marks[1].ns < marks[0].ns {
		t.Fatalf("clock went backwards: %v", marks)
	}
}
