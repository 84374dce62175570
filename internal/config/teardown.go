package config

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
)

// Teardown is what DEL needs of a configuration: the state it removes is found by the
// attachment's identity (container ID and interface name), so only where to log and
// which NAT backend to ask remain.
type Teardown struct {
	Name     string
	Backend  Backend
	LogFile  string
	LogLevel slog.Level
}

// ReadTeardown reads what DEL needs from data, leniently, and never fails: a document
// that stopped validating (a NAD edited after the pod started, a plugin upgrade that
// tightened a check, or garbage) must not keep a runtime from tearing a pod down. A
// field it cannot use keeps its default (auto backend, stderr, info); of a valid
// document it reads what Load would.
func ReadTeardown(data []byte) Teardown {
	td := Teardown{Backend: Auto}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return td
	}
	str := func(key string) string {
		var s string
		_ = json.Unmarshal(fields[key], &s)
		return s
	}
	td.Name = str("name")
	if b := Backend(strings.ToLower(str("backend"))); slices.Contains([]Backend{NFTables, IPTables}, b) {
		td.Backend = b
	}
	td.LogFile = str("log_file")
	td.LogLevel, _ = ParseLogLevel(str("log_level")) // info when unreadable
	return td
}
