package logging

import (
	"bytes"
	"encoding/json"
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
