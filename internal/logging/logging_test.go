package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLinesAreJSONWithControlCharactersEscapedAndValuesCapped(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo)
	log.Debug("hidden")
	log.Info("decision", "host", "evil\r\n\x1b[31mhost", "long", strings.Repeat("x", 5000))
	out := buf.String()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want exactly one line (debug filtered), got %q", out)
	}
	if strings.ContainsAny(strings.TrimSuffix(out, "\n"), "\r\n\x1b") {
		t.Fatalf("raw control characters in log line: %q", out)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if rec["host"] != "evil\r\n\x1b[31mhost" {
		t.Errorf("host = %q", rec["host"])
	}
	if got := len(rec["long"].(string)); got != MaxValueLen+3 {
		t.Errorf("long value length %d, want %d", got, MaxValueLen+3)
	}
}

func TestOpenAppendsToLogFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "egress-router.log")
	for i := 0; i < 2; i++ {
		log, closer, err := Open(file, slog.LevelDebug, os.Stdout)
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("attempt", "n", i)
		closer.Close()
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), `"msg":"attempt"`); n != 2 {
		t.Fatalf("want 2 appended lines, got %d:\n%s", n, data)
	}
}

func TestErrorsStringersAndListsAreCappedToo(t *testing.T) {
	var buf bytes.Buffer
	long := strings.Repeat("y", 5000)
	New(&buf, slog.LevelInfo).Info("x", "error", errors.New(long), "addr", stringer(long), "list", []string{long, long}, "short", []int{1, 2})
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"error", "addr", "list"} {
		if s, _ := rec[key].(string); len(s) != MaxValueLen+3 {
			t.Errorf("%s: %d bytes, want %d", key, len(s), MaxValueLen+3)
		}
	}
	if list, ok := rec["short"].([]any); !ok || len(list) != 2 {
		t.Errorf("a short list stays a list: %#v", rec["short"])
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestBudgetAdmitsPerSecondAndCountsTheRest(t *testing.T) {
	b := &Budget{PerSecond: 3}
	admitted := 0
	for range 10 {
		if ok, _ := b.Admit(); ok {
			admitted++
		}
	}
	if admitted > 3*2 { // the loop may straddle one second boundary
		t.Fatalf("admitted %d lines, want at most 3 a second", admitted)
	}
	b.second-- // as if the second had passed
	ok, dropped := b.Admit()
	if !ok || dropped == 0 {
		t.Fatalf("new second: ok=%v dropped=%d, want the drops reported", ok, dropped)
	}
}
