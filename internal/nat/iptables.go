package nat

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-iptables/iptables"
)

// iptablesBackend gives each attachment its own chains, EGR-<hash>-DNAT and -SNAT in
// nat and EGR-<hash>-FWD and -IN in filter, jumped to from PREROUTING, POSTROUTING,
// FORWARD and INPUT, and writes each family with a single iptables-restore --noflush.
// Like the nftables backend, it writes only the chains that hold rules.
//
// Which iptables: the one `iptables` on PATH is, legacy or nft (go-iptables finds it
// and reads its version). Debian and RHEL switch iptables, iptables-save and
// iptables-restore together through alternatives, so the three agree. Following the
// node's choice keeps the rules visible to its own `iptables -S` and never mixes
// legacy and nft state in one netns, where each half is invisible to the other's tools.
type iptablesBackend struct{}

func (iptablesBackend) Name() string { return IPTables }

// xtChainSpec is where one chain of the rule model lives in iptables.
type xtChainSpec struct {
	table   string // nat or filter
	builtin string // the built-in chain that jumps to it
	suffix  string // of the per-attachment chain's name
}

var (
	xtChainSpecs = map[chain]xtChainSpec{
		prerouting:  {table: "nat", builtin: "PREROUTING", suffix: "DNAT"},
		postrouting: {table: "nat", builtin: "POSTROUTING", suffix: "SNAT"},
		forward:     {table: "filter", builtin: "FORWARD", suffix: "FWD"},
		input:       {table: "filter", builtin: "INPUT", suffix: "IN"},
	}
	// xtTables are the tables of xtChainSpecs in the order a restore writes them.
	xtTables = []string{"nat", "filter"}
)

func xtChainName(a Attachment, c chain) string {
	return "EGR-" + a.hash() + "-" + xtChainSpecs[c].suffix
}

// xtables is one family's iptables tools.
type xtables struct {
	family  family
	restore string
	save    string
}

// findXtables locates the family's tools; the error wraps exec.ErrNotFound when they
// are not installed. What it finds for an `iptables` binary is kept for the process:
// Available and Apply both ask, and a lookup runs `iptables --version`.
func findXtables(f family) (xtables, error) {
	path, err := exec.LookPath(xtablesName(f))
	if err != nil {
		return xtables{}, fmt.Errorf("%s: %w", xtablesName(f), err)
	}
	if x, ok := foundXtables.Load(path); ok {
		return x.(xtables), nil
	}
	x, err := lookUpXtables(f)
	if err == nil {
		foundXtables.Store(path, x)
	}
	return x, err
}

var foundXtables sync.Map // path of iptables or ip6tables -> xtables

func xtablesName(f family) string {
	if f == ipv6 {
		return "ip6tables"
	}
	return "iptables"
}

func lookUpXtables(f family) (xtables, error) {
	proto, name := iptables.ProtocolIPv4, xtablesName(f)
	if f == ipv6 {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.New(iptables.IPFamily(proto))
	if err != nil {
		return xtables{}, fmt.Errorf("%s: %w", name, err)
	}
	// iptables-restore learnt --wait (take the xtables lock, as every other user of
	// legacy iptables does) in 1.6.2.
	if v1, v2, v3 := ipt.GetIptablesVersion(); slices.Compare([]int{v1, v2, v3}, []int{1, 6, 2}) < 0 {
		return xtables{}, fmt.Errorf("%s %d.%d.%d is too old, need 1.6.2 or later", name, v1, v2, v3)
	}
	x := xtables{family: f}
	if x.restore, err = exec.LookPath(name + "-restore"); err != nil {
		return xtables{}, err
	}
	if x.save, err = exec.LookPath(name + "-save"); err != nil {
		return xtables{}, err
	}
	return x, nil
}

// read returns the family's live state.
func (x xtables) read() (xtState, error) {
	out, err := exec.Command(x.save).Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", x.save, exitDetail(err))
	}
	return parseSave(string(out)), nil
}

// load runs iptables-restore once with script on its input; an empty script needs
// no run.
func (x xtables) load(script string, flags ...string) error {
	if script == "" {
		return nil
	}
	cmd := exec.Command(x.restore, append([]string{"--noflush", "--wait"}, flags...)...)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", x.restore, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// exitDetail adds a failed command's standard error to its error.
func exitDetail(err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(exit.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(exit.Stderr)))
	}
	return err
}

// Available checks that iptables-restore works: --test parses the input and opens the
// tables without committing anything.
func (iptablesBackend) Available() error {
	x, err := findXtables(ipv4)
	if err != nil {
		return err
	}
	return x.load("*nat\nCOMMIT\n*filter\nCOMMIT\n", "--test")
}

// Apply writes each family that has rules, and clears a family that no longer has
// any, with one restore per family. iptables has no transaction across tables or
// families: iptables-restore commits table by table. So when any part fails, Apply
// removes everything the attachment has, in every family, rather than leave part of
// it — nothing half-applied, at the price of the older copy.
func (b iptablesBackend) Apply(a Attachment, rs Ruleset) error {
	rules, err := a.rulesOf(rs)
	if err != nil {
		return err
	}
	err = forEachFamily(rules, func(x xtables, live xtState, want []rule) error {
		return x.load(restoreScript(a, live, want))
	})
	if err != nil {
		return errors.Join(err, b.Remove(a))
	}
	return nil
}

func (iptablesBackend) Remove(a Attachment) error {
	if err := a.validate(); err != nil {
		return err
	}
	return forEachFamily(nil, func(x xtables, live xtState, _ []rule) error {
		return x.load(restoreScript(a, live, nil))
	})
}

func (iptablesBackend) Check(a Attachment, rs Ruleset) error {
	rules, err := a.rulesOf(rs)
	if err != nil {
		return err
	}
	var drift []string
	err = forEachFamily(rules, func(x xtables, live xtState, want []rule) error {
		drift = append(drift, x.drift(a, live, want)...)
		return nil
	})
	if err != nil {
		return err
	}
	return driftError("chains EGR-"+a.hash()+"-*", drift)
}

// forEachFamily calls do with each family's tools, live state and share of rules.
// A family without rules is skipped when its tools are missing or cannot list the
// kernel's tables (no ip6tables, IPv6 disabled): nothing of it can have been written.
func forEachFamily(rules []rule, do func(x xtables, live xtState, want []rule) error) error {
	for _, f := range families {
		want := slices.DeleteFunc(slices.Clone(rules), func(r rule) bool { return r.family != f })
		x, err := findXtables(f)
		var live xtState
		if err == nil {
			live, err = x.read()
		}
		if err != nil && len(want) == 0 {
			continue
		}
		if err == nil {
			err = do(x, live, want)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

// drift compares one family's live chains, jumps and rules with want.
func (x xtables) drift(a Attachment, live xtState, want []rule) []string {
	var (
		drift []string
		got   []rule
		used  = usedChains(want)
	)
	for _, c := range chains {
		spec, name := xtChainSpecs[c], xtChainName(a, c)
		owned := slices.Contains(used, c)
		switch exists := live.hasChain(spec.table, name); {
		case owned && !exists:
			drift = append(drift, fmt.Sprintf("%s chain %s is missing", x.family, name))
			want = slices.DeleteFunc(want, func(r rule) bool { return r.chain == c })
		case !owned && exists:
			drift = append(drift, fmt.Sprintf("unexpected %s chain %s", x.family, name))
		}
		wantJumps := 0
		if owned {
			wantJumps = 1
		}
		switch n := len(live.jumps(spec.table, spec.builtin, name)); {
		case n == 0 && wantJumps == 1:
			drift = append(drift, fmt.Sprintf("%s jump from %s to %s is missing", x.family, spec.builtin, name))
		case n != wantJumps:
			drift = append(drift, fmt.Sprintf("%s jump from %s to %s appears %d times, want %d", x.family, spec.builtin, name, n, wantJumps))
		}
		if owned {
			for _, args := range live.rules(spec.table, name) {
				got = append(got, xtRule(c, x.family, args))
			}
		}
	}
	return append(drift, diff(want, got)...)
}
