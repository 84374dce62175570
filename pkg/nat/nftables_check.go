package nat

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
)

// Check reads the attachment's table back as rules, each map element as the DNAT
// rule it was written from, and compares them with rs's. A chain rs has no rules for
// is unexpected, like a rule.
func (nftablesBackend) Check(a Attachment, rs Ruleset) error {
	want, err := a.rulesOf(rs)
	if err != nil {
		return err
	}
	conn, table, exists, err := openTable(a)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("table %s is missing", table.Name)
	}
	liveChains, err := conn.ListChainsOfTableFamily(table.Family)
	if err != nil {
		return fmt.Errorf("list chains: %w", err)
	}
	liveChains = slices.DeleteFunc(liveChains, func(c *nftables.Chain) bool { return c.Table.Name != table.Name })

	var drift []string
	maps, err := conn.GetSets(table)
	if err != nil {
		return fmt.Errorf("list maps of %s: %w", table.Name, err)
	}
	for _, m := range maps {
		if !slices.ContainsFunc(want, func(r rule) bool { return inRedirectMap(r) && redirectMapNames[r.family] == m.Name }) {
			drift = append(drift, "unexpected "+setKind(m)+" "+m.Name)
		}
	}

	var live []rule
	looked := map[family]bool{} // families whose map a rule looks up
	for _, c := range usedChains(want) {
		i := slices.IndexFunc(liveChains, func(lc *nftables.Chain) bool { return lc.Name == c.String() })
		if i < 0 {
			drift = append(drift, fmt.Sprintf("chain %s is missing", c))
			want = slices.DeleteFunc(want, func(r rule) bool { return r.chain == c })
			continue
		}
		lc := liveChains[i]
		liveChains = slices.Delete(liveChains, i, i+1)
		if got, spec := describeChain(lc), nftChainSpecs[c]; got != describeChain(&spec) {
			drift = append(drift, fmt.Sprintf("chain %s is %s, want %s", c, got, describeChain(&spec)))
		}
		rules, err := conn.GetRules(table, lc)
		if err != nil {
			return fmt.Errorf("list rules of %s %s: %w", table.Name, c, err)
		}
		for _, r := range rules {
			lookup, ok := readRedirectLookup(r.Exprs)
			if c != prerouting || !ok {
				live = append(live, nftRule(c, r.Handle, r.Exprs))
				continue
			}
			m := &nftables.Set{Table: table, Name: redirectMapNames[lookup.family]}
			elements, err := conn.GetSetElements(m)
			if err != nil {
				return fmt.Errorf("list elements of map %s: %w", m.Name, err)
			}
			live = append(live, redirectRules(lookup, elements, want)...)
			looked[lookup.family] = true
		}
	}
	for _, extra := range liveChains {
		drift = append(drift, fmt.Sprintf("unexpected chain %s", extra.Name))
	}
	// Without the rule that looks a map up, its elements do nothing: say so once
	// rather than once per element.
	for _, f := range families {
		inMap := func(r rule) bool { return inRedirectMap(r) && r.family == f }
		if slices.ContainsFunc(want, inMap) && !looked[f] {
			drift = append(drift, fmt.Sprintf("%s DNAT rule looking up map %s is missing", f, redirectMapNames[f]))
			want = slices.DeleteFunc(want, inMap)
		}
	}
	drift = append(drift, diff(want, live)...)
	return driftError("table "+table.Name, drift)
}

// hookNames are the base chain hooks in nft's words.
var hookNames = map[nftables.ChainHook]string{
	*nftables.ChainHookPrerouting:  "prerouting",
	*nftables.ChainHookInput:       "input",
	*nftables.ChainHookForward:     "forward",
	*nftables.ChainHookOutput:      "output",
	*nftables.ChainHookPostrouting: "postrouting",
}

// describeChain renders what makes a base chain behave as it does, in nft's words.
func describeChain(c *nftables.Chain) string {
	s := "type " + string(c.Type)
	if c.Hooknum != nil {
		s += " hook " + hookNames[*c.Hooknum]
	}
	if c.Priority != nil {
		s += fmt.Sprintf(" priority %d", *c.Priority)
	}
	if c.Policy != nil && *c.Policy == nftables.ChainPolicyDrop {
		s += " policy drop"
	}
	return s
}

func setKind(s *nftables.Set) string {
	if s.IsMap {
		return "map"
	}
	return "set"
}
