package forwarder

import (
	"errors"
	"fmt"
)

// Ready returns nil once every line has an address to dial, or says which lack one.
func (f *Forwarder) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.order) == 0 {
		return errors.New("no configuration applied")
	}
	var errs []error
	for _, port := range f.order {
		if t := f.lines[port].serving.Load(); !t.hasAddress() {
			errs = append(errs, fmt.Errorf("line %q has no address yet", t.rule.String()))
		}
	}
	return errors.Join(errs...)
}
