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

// LoadTeardown reads what DEL needs from data, leniently, and never fails: a document
// that stopped validating (a NAD edited after the pod started, a plugin upgrade that
// tightened a check, or garbage) must not keep a runtime from tearing a pod down. A
// field it cannot use keeps its default (auto backend, stderr, info). invalid is what
// Load refuses in data, nil when data is valid, for DEL to log.
func LoadTeardown(data []byte) (td Teardown, invalid error) {
	td.Backend = Auto
	_, invalid = Load(data) // for a valid document, the reading below gives what Load would
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return td, invalid
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
	return td, invalid
}
