package nat

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
)

// Check reads the attachment's table back (readNftables) and compares it with rs's
// rules (drift).
func (nftablesBackend) Check(a Attachment, rs Ruleset) error {
	want, err := a.rulesOf(rs)
	if err != nil {
		return err
	}
	live, err := readNftables(a)
	if err != nil {
		return err
	}
	if !live.exists {
		return fmt.Errorf("table %s is missing", live.table)
	}
	return driftError("table "+live.table, live.drift(want))
}

// nftLive is the attachment's table as the kernel has it.
type nftLive struct {
	table  string
	exists bool
	maps   []*nftables.Set
	chains []nftLiveChain // in the kernel's order
}

// nftLiveChain is one chain of the table: how it hooks in and, for a chain of the
// rule model, its rules.
type nftLiveChain struct {
	name  string
	spec  string // describeChain's words
	rules []nftLiveRule
}

// nftLiveRule is one live rule read into the rule model; a rule that looks up a
// redirect map keeps the map's elements, which drift reads as the DNAT rules they
// were written from once it knows the order to put them in.
type nftLiveRule struct {
	rule     rule
	lookup   bool
	elements []nftables.SetElement
}

// readNftables reads the attachment's table: its maps, its chains, and the rules of
// those the rule model knows.
func readNftables(a Attachment) (nftLive, error) {
	conn, table, exists, err := openTable(a)
	if err != nil {
		return nftLive{}, err
	}
	if !exists {
		return nftLive{table: table.Name}, nil
	}
	s := nftLive{table: table.Name, exists: true}
	liveChains, err := conn.ListChainsOfTableFamily(table.Family)
	if err != nil {
		return s, fmt.Errorf("list chains: %w", err)
	}
	if s.maps, err = conn.GetSets(table); err != nil {
		return s, fmt.Errorf("list maps of %s: %w", table.Name, err)
	}
	for _, lc := range liveChains {
		if lc.Table.Name != table.Name {
			continue
		}
		cs := nftLiveChain{name: lc.Name, spec: describeChain(lc)}
		i := slices.IndexFunc(chains, func(c chain) bool { return c.String() == lc.Name })
		if i < 0 {
			s.chains = append(s.chains, cs)
			continue
		}
		c := chains[i]
		rules, err := conn.GetRules(table, lc)
		if err != nil {
			return s, fmt.Errorf("list rules of %s %s: %w", table.Name, c, err)
		}
		for _, r := range rules {
			lookup, ok := readRedirectLookup(r.Exprs)
			if c != prerouting || !ok {
				cs.rules = append(cs.rules, nftLiveRule{rule: nftRule(c, r.Handle, r.Exprs)})
				continue
			}
			m := &nftables.Set{Table: table, Name: redirectMapNames[lookup.family]}
			elements, err := conn.GetSetElements(m)
			if err != nil {
				return s, fmt.Errorf("list elements of map %s: %w", m.Name, err)
			}
			cs.rules = append(cs.rules, nftLiveRule{rule: lookup, lookup: true, elements: elements})
		}
		s.chains = append(s.chains, cs)
	}
	return s, nil
}

// drift describes how the table differs from want. A chain or map want has no use
// for is unexpected, like a rule.
func (s nftLive) drift(want []rule) []string {
	var drift []string
	for _, m := range s.maps {
		if !slices.ContainsFunc(want, func(r rule) bool { return inRedirectMap(r) && redirectMapNames[r.family] == m.Name }) {
			drift = append(drift, "unexpected "+setKind(m)+" "+m.Name)
		}
	}
	var live []rule
	looked := map[family]bool{} // families whose map a rule looks up
	seen := map[string]bool{}
	for _, c := range usedChains(want) {
		i := slices.IndexFunc(s.chains, func(lc nftLiveChain) bool { return lc.name == c.String() })
		if i < 0 {
			drift = append(drift, fmt.Sprintf("chain %s is missing", c))
			want = slices.DeleteFunc(want, func(r rule) bool { return r.chain == c })
			continue
		}
		lc := s.chains[i]
		seen[lc.name] = true
		if spec := nftChainSpecs[c]; lc.spec != describeChain(&spec) {
			drift = append(drift, fmt.Sprintf("chain %s is %s, want %s", c, lc.spec, describeChain(&spec)))
		}
		for _, r := range lc.rules {
			if !r.lookup {
				live = append(live, r.rule)
				continue
			}
			live = append(live, redirectRules(r.rule, r.elements, want)...)
			looked[r.rule.family] = true
		}
	}
	for _, extra := range s.chains {
		if !seen[extra.name] {
			drift = append(drift, fmt.Sprintf("unexpected chain %s", extra.name))
		}
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
	return append(drift, diff(want, live)...)
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
