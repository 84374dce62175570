package render

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// nameSuffix marks every object rendered for a router.
const nameSuffix = "-egress-router"

// Name is the name of every object rendered for the router named router (objects of
// different kinds may share a name). It is a DNS-1035 label, as a Service name must be:
// router + "-egress-router" when that is one, else a cut-down, sanitised router name
// with a hash of the whole name, so different routers never share objects.
func Name(router string) string {
	if direct := router + nameSuffix; len(validation.IsDNS1035Label(direct)) == 0 {
		return direct
	}
	sum := sha256.Sum256([]byte(router))
	hash := hex.EncodeToString(sum[:])[:10]
	keep := validation.DNS1035LabelMaxLength - len(nameSuffix) - len(hash) - 1
	var b strings.Builder
	for _, c := range strings.ToLower(router) {
		if b.Len() == keep {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9' && b.Len() > 0:
			b.WriteRune(c)
		case b.Len() > 0:
			b.WriteByte('-')
		}
	}
	prefix := strings.TrimRight(b.String(), "-")
	if prefix == "" {
		return "r" + hash + nameSuffix
	}
	return prefix + "-" + hash + nameSuffix
}
