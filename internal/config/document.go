package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// document is the JSON shape of the configuration as users write it. Config is the
// validated value Load builds from it; Config.MarshalJSON renders it back.
type document struct {
	types.PluginConf
	Mode          string             `json:"mode,omitempty"`
	Backend       string             `json:"backend,omitempty"`
	InterfaceType string             `json:"interfaceType,omitempty"`
	InterfaceArgs *interfaceArgsJSON `json:"interfaceArgs,omitempty"`
	IP            *ipJSON            `json:"ip,omitempty"`
	HTTPProxy     *proxyJSON         `json:"httpProxy,omitempty"`
	DNSProxy      *proxyJSON         `json:"dnsProxy,omitempty"`
	HA            *haJSON            `json:"ha,omitempty"`
	LogFile       string             `json:"log_file,omitempty"`
	LogLevel      string             `json:"log_level,omitempty"`
}

type interfaceArgsJSON struct {
	Master string          `json:"master,omitempty"`
	Mode   string          `json:"mode,omitempty"`
	MTU    json.RawMessage `json:"mtu,omitempty"`
}

type ipJSON struct {
	Addresses    []string        `json:"addresses,omitempty"`
	Gateway      string          `json:"gateway,omitempty"`
	Gateways     []string        `json:"gateways,omitempty"`
	Destinations json.RawMessage `json:"destinations,omitempty"`
	FallbackIP   string          `json:"fallbackIP,omitempty"`
}

type haJSON struct {
	Enabled bool `json:"enabled"`
}

type proxyJSON struct {
	Destinations json.RawMessage `json:"destinations,omitempty"`
}

// decodeLines reads a grammar's input: a JSON list of lines, or one string holding a
// pasted multi-line block (a legacy EGRESS_DESTINATION value).
func decodeLines(raw json.RawMessage) ([]string, error) {
	// Decoded once, as what it is: a thousand-line table is most of the document, and
	// every pass over it shows in the ADD's time.
	switch jsonKind(raw) {
	case "":
		return nil, nil
	case "a string", "null":
		var block string
		if json.Unmarshal(raw, &block) == nil {
			return []string{block}, nil
		}
	case "a list":
		var list []string
		if json.Unmarshal(raw, &list) == nil {
			return list, nil
		}
	}
	return nil, fmt.Errorf("want a list of strings or one multi-line string, got %s", jsonKind(raw))
}

// decodeNumberText reads a number that existing configs write as a JSON string
// ("1500") and hand-written ones as a number (1500).
func decodeNumberText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", fmt.Errorf("want a number or a string holding one, got %s", jsonKind(raw))
	}
	return n.String(), nil
}

func encodeJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v) // strings and lists of strings always encode
	return b
}

// jsonKind names the kind of a JSON value from its first bytes ("" for none): values
// can be long, and the name is all an error message needs.
func jsonKind(b []byte) string {
	b = bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(b) == 0:
		return ""
	case bytes.HasPrefix(b, []byte("null")):
		return "null"
	case b[0] == '{':
		return "an object"
	case b[0] == '[':
		return "a list"
	case b[0] == '"':
		return "a string"
	case b[0] == 't' || b[0] == 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

// ownedFields lists, per JSON object the project owns, the fields it defines. A key
// that differs from one of them only in case, separators or a typo is reported rather
// than ignored: "fallbackIp" must not silently drop the fallback.
var ownedFields = map[string][]string{
	"":              {"mode", "backend", "interfaceType", "interfaceArgs", "ip", "httpProxy", "dnsProxy", "ha", "log_file", "log_level"},
	"ip":            {"addresses", "gateway", "gateways", "destinations", "fallbackIP"},
	"interfaceArgs": {"master", "mode", "mtu"},
	"httpProxy":     {"destinations"},
	"dnsProxy":      {"destinations"},
	"ha":            {"enabled"},
}

// strictObjects are the owned objects that accept no field but their own: "ha" is new
// to this project, so no existing document carries extensions in it, and a field the
// agent would not read (a timer, say) must not look as if it were honoured.
var strictObjects = []string{"ha"}

// misspelt reports keys of the raw document that look like a misspelling of a field
// the project owns.
func misspelt(data []byte) []error {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return nil // the typed decode reports the syntax error
	}
	errs := nearMisses("", top)
	for _, object := range []string{"ip", "interfaceArgs", "httpProxy", "dnsProxy", "ha"} {
		var fields map[string]json.RawMessage
		if raw, ok := top[object]; ok && json.Unmarshal(raw, &fields) == nil {
			errs = append(errs, nearMisses(object, fields)...)
		}
	}
	return errs
}

func nearMisses(object string, fields map[string]json.RawMessage) []error {
	var errs []error
	known := ownedFields[object]
	for key := range fields {
		if slices.Contains(known, key) {
			continue
		}
		where := "unknown field " + strconv.Quote(key)
		if object != "" {
			where += " in " + object
		}
		field := strings.TrimPrefix(object+"."+key, ".")
		i := slices.IndexFunc(known, func(want string) bool { return looksLike(key, want) })
		switch {
		case i >= 0:
			errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf("%s: did you mean %q?", where, known[i])})
		case slices.Contains(strictObjects, object):
			errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf("%s: %s has only %s", where, object, quoteAll(known))})
		}
	}
	return errs
}

func quoteAll(fields []string) string {
	q := make([]string, len(fields))
	for i, f := range fields {
		q[i] = strconv.Quote(f)
	}
	return strings.Join(q, ", ")
}

// looksLike is true for keys equal but for case and separators, and for keys one or
// two edits away from a long field name (short names like "ip" would match too much).
func looksLike(key, field string) bool {
	k, f := fold(key), fold(field)
	if k == f {
		return true
	}
	return len(f) >= 6 && editDistance(k, f) <= 2
}

var separators = strings.NewReplacer("_", "", "-", "")

func fold(s string) string { return separators.Replace(strings.ToLower(s)) }

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
