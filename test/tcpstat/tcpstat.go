// Package tcpstat reads a network namespace's TCP segment counters, so a benchmark can
// show how many segments its senders had to send again: at a host's TCP memory limit a
// receive queue that overflows drops segments, and their retransmission costs the
// senders' CPU, which a throughput figure alone does not show.
package tcpstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/ratio"
)

// Why is what a retransmitted share shows, for a benchmark's notes.
const Why = "where the host's TCP memory (tcp_mem) runs short, receive queues drop segments their windows admitted, and the senders' CPU goes to sending them again"

// Counters are a namespace's TCP segments sent (retransmissions included) and
// retransmitted, since it was made.
type Counters struct {
	Out, Retransmitted int64
}

// Read returns the counters of namespace n.
func Read(n ns.NetNS) (Counters, error) {
	var data []byte
	// /proc/thread-self: the namespace of the thread ns.Do runs on, not the process's.
	err := n.Do(func(ns.NetNS) (err error) {
		data, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	})
	if err != nil {
		return Counters{}, fmt.Errorf("tcpstat: %s: %w", n.Path(), err)
	}
	c, err := parse(data)
	if err != nil {
		return Counters{}, fmt.Errorf("tcpstat: %s: %w", n.Path(), err)
	}
	return c, nil
}

// Watch reads the summed counters of namespaces now, and returns what share of the
// segments they sent from then until each call was sent again, in percent.
func Watch(namespaces ...ns.NetNS) (retransmitted func() (float64, error), err error) {
	before, err := readAll(namespaces)
	if err != nil {
		return nil, err
	}
	return func() (float64, error) {
		now, err := readAll(namespaces)
		if err != nil {
			return 0, err
		}
		return now.retransmittedSince(before), nil
	}, nil
}

// readAll returns the sum of the counters of namespaces.
func readAll(namespaces []ns.NetNS) (Counters, error) {
	var sum Counters
	for _, n := range namespaces {
		c, err := Read(n)
		if err != nil {
			return Counters{}, err
		}
		sum.Out += c.Out
		sum.Retransmitted += c.Retransmitted
	}
	return sum, nil
}

// retransmittedSince is the share of the segments sent between before and c that were
// retransmissions, in percent; 0 when none were sent.
func (c Counters) retransmittedSince(before Counters) float64 {
	return ratio.Percent(c.Retransmitted-before.Retransmitted, c.Out-before.Out)
}

// parse reads OutSegs and RetransSegs from the Tcp lines of /proc/net/snmp: a line of
// field names, then a line of their values.
func parse(snmp []byte) (Counters, error) {
	var names [][]byte
	for line := range bytes.Lines(snmp) {
		fields := bytes.Fields(line)
		if len(fields) == 0 || string(fields[0]) != "Tcp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		if len(fields) != len(names) {
			return Counters{}, fmt.Errorf("snmp: %d Tcp values for %d names", len(fields), len(names))
		}
		var c Counters
		found := 0
		for i, name := range names {
			var into *int64
			switch string(name) {
			case "OutSegs":
				into = &c.Out
			case "RetransSegs":
				into = &c.Retransmitted
			default:
				continue
			}
			v, err := strconv.ParseInt(string(fields[i]), 10, 64)
			if err != nil {
				return Counters{}, fmt.Errorf("snmp: Tcp %s: %w", name, err)
			}
			*into = v
			found++
		}
		if found != 2 {
			return Counters{}, fmt.Errorf("snmp: no Tcp OutSegs or RetransSegs")
		}
		return c, nil
	}
	return Counters{}, fmt.Errorf("snmp: no Tcp lines")
}
