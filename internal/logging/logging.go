// Package logging builds the structured logger every binary uses: JSON lines (control
// characters escaped by the encoding), string values capped in length, written to
// log_file or to a fallback stream. The CNI plugin's fallback is stderr, never stdout,
// which carries only the CNI result.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// MaxValueLen caps each string value: requests and configuration lines are input, and
// one oversized value must not become a megabyte of log.
const MaxValueLen = 512

// Open returns a logger at level writing to file (appended, created with its directory
// if missing) or, when file is "", to fallback. Close the returned closer when done.
//
// The proxies use it for their log_file: they run in their pod's container, whose file
// system the author of the configuration already shapes through the pod spec, so any
// path there is theirs to choose. The CNI plugin, root on the node, uses OpenIn.
func Open(file string, level slog.Level, fallback io.Writer) (*slog.Logger, io.Closer, error) {
	var (
		w      = fallback
		closer io.Closer
	)
	if file != "" {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return nil, nil, fmt.Errorf("log_file %s: %w", file, err)
		}
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("log_file %s: %w", file, err)
		}
		w, closer = f, f
	}
	if closer == nil {
		closer = io.NopCloser(nil)
	}
	return New(w, level), closer, nil
}

// New returns a logger at level writing JSON lines to w.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: capValue}))
}

// capValue caps strings, and anything that prints long: errors and Stringers (which
// may carry request data) and lists (a resolver's answer), rendered as capped strings.
func capValue(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = capped(a.Value.String())
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			a.Value = capped(v.Error())
		case fmt.Stringer:
			a.Value = capped(v.String())
		default:
			if s := fmt.Sprint(v); len(s) > MaxValueLen {
				a.Value = capped(s)
			}
		}
	}
	return a
}

func capped(s string) slog.Value {
	if len(s) > MaxValueLen {
		s = s[:MaxValueLen] + "..."
	}
	return slog.StringValue(s)
}
