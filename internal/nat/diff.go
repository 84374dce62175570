package nat

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// diff compares the rules a backend read back from the kernel with the wanted ones
// and describes every difference in plain words. Rules match by key; a matched rule
// whose interface or NAT address changed is reported as that change rather than as
// one missing and one unexpected rule.
func diff(want, live []rule) []string {
	wanted := make(map[rule]rule, len(want))
	for _, w := range want {
		wanted[w.key()] = w
	}
	var drift []string
	seen := map[rule]bool{}
	for _, l := range live {
		k := l.key()
		w, ok := wanted[k]
		switch {
		case !ok:
			drift = append(drift, "unexpected "+l.String())
		case seen[k]:
			drift = append(drift, "duplicate "+l.String())
		default:
			drift = append(drift, changes(w, l)...)
		}
		seen[k] = true
	}
	for _, w := range want {
		if !seen[w.key()] {
			drift = append(drift, w.String()+" is missing")
		}
	}
	if len(drift) == 0 {
		drift = outOfOrder(want, live)
	}
	return drift
}

// driftError is nil when nothing drifted, else one error naming where and what.
func driftError(where string, drift []string) error {
	if len(drift) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", where, strings.Join(drift, "; "))
}

// changes describes how live differs from w, two rules with the same key.
func changes(w, live rule) []string {
	var out []string
	if live.to != w.to {
		what := "DNAT target for "
		if w.action == snat {
			what = "SNAT source for "
		}
		out = append(out, fmt.Sprintf("%s%s is %s, want %s", what, w.subject(), formatTarget(live.to), formatTarget(w.to)))
	}
	for _, m := range []struct{ direction, prefix, live, want string }{
		{"arriving on", "", live.in, w.in},
		{"arriving on", "any interface but ", live.notIn, w.notIn},
		{"leaving on", "", live.out, w.out},
	} {
		if m.live != m.want {
			out = append(out, fmt.Sprintf("%s matches packets %s %s, want %s", w, m.direction, interfaceMatch(m.prefix, m.live), interfaceMatch(m.prefix, m.want)))
		}
	}
	return out
}

// interfaceMatch words an interface condition; no name means no condition.
func interfaceMatch(prefix, name string) string {
	if name == "" {
		return "any interface"
	}
	return prefix + strconv.Quote(name)
}

// outOfOrder reports chains whose rules, all present, are in the wrong order: the
// first match wins, so an early fallback or drop would shadow the rules after it.
func outOfOrder(want, live []rule) []string {
	var out []string
	for _, c := range chains {
		for _, f := range families {
			outside := func(r rule) bool { return r.chain != c || r.family != f }
			w := slices.DeleteFunc(slices.Clone(want), outside)
			l := slices.DeleteFunc(slices.Clone(live), outside)
			if !slices.EqualFunc(w, l, func(a, b rule) bool { return a.key() == b.key() }) {
				out = append(out, fmt.Sprintf("%s rules in %s are out of order", f, c))
			}
		}
	}
	return out
}
