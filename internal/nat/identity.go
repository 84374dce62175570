package nat

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// commentMax keeps identity comments within nftables' rule comment limit (128 bytes
// with the terminating NUL); iptables allows 256.
const commentMax = 127

func (a Attachment) validate() error {
	if a.ContainerID == "" || a.IfName == "" {
		return errors.New("attachment needs a container ID and an interface name")
	}
	return nil
}

// rulesOf validates the attachment and builds what rs programs, the start of every
// backend's Apply and Check.
func (a Attachment) rulesOf(rs Ruleset) ([]rule, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	rules, err := rs.rules()
	if err != nil {
		return nil, fmt.Errorf("invalid ruleset: %w", err)
	}
	return rules, nil
}

// hash is the short, stable name every table and chain of the attachment carries.
// 16 hex digits keep "EGR-<hash>-DNAT" within iptables' 28-character chain names.
func (a Attachment) hash() string {
	sum := sha256.Sum256([]byte(a.ContainerID + "\x00" + a.IfName))
	return hex.EncodeToString(sum[:8])
}

// comment is the human-readable identity written on the rules, so `nft list ruleset`
// and `iptables-save` show whose they are: on every nftables rule, and on iptables'
// jumps into the attachment's chains (see restoreScript).
func (a Attachment) comment() string {
	c := "egress-router container=" + printable(a.ContainerID) + " if=" + printable(a.IfName)
	if len(c) > commentMax {
		c = c[:commentMax]
	}
	return c
}

// printable keeps the characters CNI allows in container IDs and interface names,
// so a comment never needs quoting beyond the backend's own.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("._-", r):
			return r
		}
		return '_'
	}, s)
}
