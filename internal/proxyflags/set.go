// Package proxyflags is the proxies' command line: a flag set whose every flag carries
// the values it accepts, and the flags both proxies share (Shared), defined once with
// the same names, meanings and defaults. A value out of range is a usage error naming
// the flag and its range, before anything listens.
package proxyflags

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Set is a proxy's flags. Parsing (Parse) checks every value against the range its
// flag was defined with.
type Set struct {
	name   string
	fs     *flag.FlagSet
	stderr io.Writer
	// checks report the values out of their range after parsing, defaults included,
	// in the order the flags were defined.
	checks []func() error
}

// New returns the flag set of proxy p, with the shared flags defined into shared.
// Errors, warnings and -help are written to stderr.
func New(p Proxy, shared *Shared, stderr io.Writer) *Set {
	s := &Set{name: p.name, fs: flag.NewFlagSet(p.name, flag.ContinueOnError), stderr: stderr}
	// Parse writes errors and help itself: the flag package would follow every error
	// with the whole help, burying it.
	s.fs.SetOutput(io.Discard)
	s.fs.Usage = func() {}
	p.define(s, shared)
	return s
}

// Parse parses args and checks every value. On an error, it writes the errors to
// stderr; on -help, the help. See ExitCode for what the error means to the program.
func (s *Set) Parse(args []string) error {
	var errs []error
	if err := s.fs.Parse(args); err != nil {
		errs = append(errs, err)
	} else {
		errs = s.outOfRange()
	}
	err := errors.Join(errs...)
	switch {
	case errors.Is(err, flag.ErrHelp):
		s.fs.SetOutput(s.stderr)
		fmt.Fprintf(s.stderr, "Usage of %s:\n", s.name)
		s.fs.PrintDefaults()
		s.fs.SetOutput(io.Discard)
	case err != nil:
		for _, e := range errs {
			fmt.Fprintf(s.stderr, "%s: %v\n", s.name, e)
		}
		fmt.Fprintf(s.stderr, "%s -help lists the flags.\n", s.name)
	}
	return err
}

func (s *Set) outOfRange() []error {
	var errs []error
	if s.fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q: settings are given as -flag=value", s.fs.Arg(0)))
	}
	for _, check := range s.checks {
		if err := check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ExitCode is the exit status for an error from Parse: 0 after -help, 2 for a usage
// error, as the flag package's own programs exit.
func ExitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// String defines a flag whose value the program checks itself when it uses it (a
// file, a host to explain).
func (s *Set) String(p *string, name, def, usage string) {
	s.fs.StringVar(p, name, def, usage)
}

// Bool defines a boolean flag.
func (s *Set) Bool(p *bool, name string, def bool, usage string) {
	s.fs.BoolVar(p, name, def, usage)
}

// Durations is the range of a duration flag.
type Durations int

const (
	// Positive is a timeout's or an interval's range: zero would expire at once or
	// turn a ticker into a busy loop (and a negative ticker panics).
	Positive Durations = iota
	// NotNegative is the range of a duration where 0 means something of its own
	// ("never", "at once"), which the flag's usage says.
	NotNegative
	// Polling is a polling interval's range: one of a nanosecond is positive but
	// re-reads a file without pause.
	Polling
)

// minPolling is the shortest polling interval Polling admits.
const minPolling = 100 * time.Millisecond

func (d Durations) admits(v time.Duration) bool {
	switch d {
	case Positive:
		return v > 0
	case NotNegative:
		return v >= 0
	}
	return v >= minPolling
}

func (d Durations) String() string {
	switch d {
	case Positive:
		return "positive"
	case NotNegative:
		return "0 or positive"
	}
	return "at least " + minPolling.String()
}

// Duration defines a duration flag taking the values of allowed.
func (s *Set) Duration(p *time.Duration, name string, def time.Duration, allowed Durations, usage string) {
	s.fs.DurationVar(p, name, def, usage)
	s.checks = append(s.checks, func() error {
		if allowed.admits(*p) {
			return nil
		}
		return rangeError(name, p.String(), allowed.String())
	})
}

// Unbounded is the max of an Int flag that has no upper bound.
const Unbounded = math.MaxInt

// Int defines an integer flag taking min to max.
func (s *Set) Int(p *int, name string, def, min, max int, usage string) {
	s.fs.IntVar(p, name, def, usage)
	allowed := fmt.Sprintf("from %d to %d", min, max)
	if max == Unbounded {
		allowed = fmt.Sprintf("%d or more", min)
	}
	s.checks = append(s.checks, func() error {
		if min <= *p && *p <= max {
			return nil
		}
		return rangeError(name, strconv.Itoa(*p), allowed)
	})
}

// Check adds a rule between flags, run once each has passed its own range; its
// error names the flags.
func (s *Set) Check(rule func() error) {
	s.checks = append(s.checks, rule)
}

// rangeError says it as the flag package says a value it cannot parse.
func rangeError(name, value, allowed string) error {
	return fmt.Errorf("invalid value %q for flag -%s: must be %s", value, name, allowed)
}

// Alias keeps old working as a deprecated spelling of the (non-boolean) flag new:
// setting it sets new and warns once on stderr; -help lists it as deprecated.
func (s *Set) Alias(old, new string) {
	target := s.fs.Lookup(new)
	if target == nil {
		panic("proxyflags: alias -" + old + " of undefined flag -" + new)
	}
	s.fs.Var(&alias{set: s, name: old, target: target}, old, "deprecated: use -"+new)
}

type alias struct {
	set    *Set
	name   string
	target *flag.Flag
	warned bool
}

// String is empty, so -help shows no default for the alias: its value is its
// target's.
func (a *alias) String() string { return "" }

func (a *alias) Set(v string) error {
	if !a.warned {
		a.warned = true
		fmt.Fprintf(a.set.stderr, "%s: -%s is deprecated; use -%s\n", a.set.name, a.name, a.target.Name)
	}
	return a.target.Value.Set(v)
}
