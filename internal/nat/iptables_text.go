package nat

import (
	"fmt"
	"slices"
	"strings"
)

// restoreScript is iptables-restore input that replaces the attachment's chains in
// one family with want: each chain want uses is written, each other one the
// attachment still has is removed ("" when there is nothing to write or remove).
// Declaring a chain creates it or, when it exists, flushes it (also under --noflush),
// so an older copy's rules never survive. Jumps found in live are deleted by their own
// specification and one is inserted first in the built-in chain, so that no earlier
// rule there can bypass the forward filter or the input guard. Only the jumps carry
// the attachment's comment: the chain's name already says whose its rules are, and a
// comment on each of a thousand DNAT rules cost iptables-restore an eighth more time.
func restoreScript(a Attachment, live xtState, want []rule) string {
	comment := a.comment()
	used := usedChains(want)
	var script strings.Builder
	for _, table := range xtTables {
		var declare, body []string
		for _, c := range chains {
			spec, name := xtChainSpecs[c], xtChainName(a, c)
			if spec.table != table {
				continue
			}
			jumps := live.jumps(table, spec.builtin, name)
			wanted := slices.Contains(used, c)
			if !wanted && len(jumps) == 0 && !live.hasChain(table, name) {
				continue
			}
			declare = append(declare, ":"+name+" - [0:0]")
			for _, jump := range jumps {
				body = append(body, "-D "+spec.builtin+" "+joinArgs(jump))
			}
			if !wanted {
				body = append(body, "-X "+name)
				continue
			}
			body = append(body, "-I "+spec.builtin+" 1 "+joinArgs([]string{"-m", "comment", "--comment", comment, "-j", name}))
			for _, r := range want {
				if r.chain == c {
					body = append(body, "-A "+name+" "+joinArgs(xtArgs(r)))
				}
			}
		}
		if len(declare) > 0 {
			fmt.Fprintf(&script, "*%s\n%s\n%s\nCOMMIT\n", table, strings.Join(declare, "\n"), strings.Join(body, "\n"))
		}
	}
	return script.String()
}

// xtState is what iptables-save printed: for each table, the chains it declares and
// each chain's rules, as argument lists after "-A <chain>".
type xtState map[string]*xtTable

type xtTable struct {
	chains map[string]bool
	rules  map[string][][]string
}

// parseSave reads iptables-save output. Lines it does not need (comments, COMMIT,
// counters) are skipped; a rule line always follows its table's "*table" line.
func parseSave(out string) xtState {
	state := xtState{}
	var t *xtTable
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			t = &xtTable{chains: map[string]bool{}, rules: map[string][][]string{}}
			state[line[1:]] = t
		case t == nil:
		case strings.HasPrefix(line, ":"):
			if name, _, _ := strings.Cut(line[1:], " "); name != "" {
				t.chains[name] = true
			}
		case strings.HasPrefix(line, "-A "):
			if args := splitArgs(line[3:]); len(args) > 0 {
				t.rules[args[0]] = append(t.rules[args[0]], args[1:])
			}
		}
	}
	return state
}

func (s xtState) hasChain(table, chain string) bool {
	t := s[table]
	return t != nil && t.chains[chain]
}

func (s xtState) rules(table, chain string) [][]string {
	if t := s[table]; t != nil {
		return t.rules[chain]
	}
	return nil
}

// jumps returns the rules of table/from that jump to chain to.
func (s xtState) jumps(table, from, to string) [][]string {
	var out [][]string
	for _, args := range s.rules(table, from) {
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-j" && args[i+1] == to {
				out = append(out, args)
				break
			}
		}
	}
	return out
}

// splitArgs splits a rule line the way iptables-restore does: on spaces, with
// double-quoted strings (in which a backslash escapes the next character) kept whole.
func splitArgs(line string) []string {
	var (
		args               []string
		cur                strings.Builder
		inArg, quoted, esc bool
	)
	for _, c := range line {
		switch {
		case esc:
			cur.WriteRune(c)
			esc = false
		case quoted && c == '\\':
			esc = true
		case c == '"':
			quoted, inArg = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// joinArgs is the inverse of splitArgs: one line iptables-restore reads back as args.
func joinArgs(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\"\\") {
			quoted[i] = a
			continue
		}
		quoted[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a) + `"`
	}
	return strings.Join(quoted, " ")
}
