// Package lines is the lexer shared by the configuration's three line grammars
// (redirect, HTTP proxy, DNS proxy): it drops blank lines and comments, splits the
// rest on any whitespace and reports errors that quote the offending line.
package lines

import (
	"fmt"
	"strconv"
	"strings"
)

// Line is one meaningful line of a grammar's input.
type Line struct {
	Number int      // 1-based, counted over every physical line of the input
	Text   string   // the line as written, without its comment, surrounding space trimmed
	Fields []string // Text split on any whitespace; never empty
}

// Split turns a grammar's input into its meaningful lines. Each entry may itself hold
// several lines: the configuration accepts a JSON list of lines or one pasted block
// (such as a legacy EGRESS_DESTINATION value), and both number their lines the same way.
func Split(entries []string) []Line {
	var out []Line
	n := 0
	for _, entry := range entries {
		for _, physical := range strings.Split(entry, "\n") {
			n++
			text := physical
			if i := strings.IndexByte(text, '#'); i >= 0 {
				text = text[:i]
			}
			fields := strings.Fields(text)
			if len(fields) == 0 {
				continue
			}
			out = append(out, Line{Number: n, Text: strings.TrimSpace(text), Fields: fields})
		}
	}
	return out
}

// Error is a problem found on one line. Its text quotes the line (escaped, so control
// characters in a configuration never reach a log or terminal raw).
type Error struct {
	Line Line
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d %s: %s", e.Line.Number, quote(e.Line.Text), e.Msg)
}

// Errorf builds an Error for line l.
func Errorf(l Line, format string, args ...any) *Error {
	return &Error{Line: l, Msg: fmt.Sprintf(format, args...)}
}

// maxQuoted caps how much of a line an error repeats: a pasted megabyte must not
// become a megabyte of log.
const maxQuoted = 120

func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}

// Port parses a TCP/UDP/SCTP port: decimal digits only, 1–65535.
func Port(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("port is missing")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %s is not a number", quote(s))
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v < 1 || v > 65535 {
		return 0, fmt.Errorf("port %s is outside 1-65535", quote(s))
	}
	return uint16(v), nil
}
