package tcpstat

import (
	"io"
	"net"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/egress-router/egress-router/test/topology"
)

func TestParseReadsTheTcpLines(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Tcp: RtoAlgorithm RtoMin OutSegs RetransSegs InErrs\nTcp: 1 200 8033905 4517 0\n" +
		"Udp: InDatagrams\nUdp: 7\n"
	c, err := parse([]byte(snmp))
	if err != nil || c != (Counters{Out: 8033905, Retransmitted: 4517}) {
		t.Fatalf("parse: %+v, %v", c, err)
	}
	for _, bad := range []string{
		"Ip: Forwarding\nIp: 1\n",                 // no Tcp lines
		"Tcp: OutSegs RetransSegs\nTcp: 1\n",      // a value short
		"Tcp: OutSegs InErrs\nTcp: 1 2\n",         // no RetransSegs
		"Tcp: OutSegs RetransSegs\nTcp: 1 lots\n", // not a number
	} {
		if c, err := parse([]byte(bad)); err == nil {
			t.Errorf("parse(%q) = %+v, want an error", bad, c)
		}
	}
}

func TestRetransmittedSince(t *testing.T) {
	before := Counters{Out: 1000, Retransmitted: 10}
	if got := (Counters{Out: 1400, Retransmitted: 14}).retransmittedSince(before); got != 1 {
		t.Errorf("4 of 400: %v%%, want 1%%", got)
	}
	if got := before.retransmittedSince(before); got != 0 {
		t.Errorf("nothing sent: %v%%, want 0", got)
	}
}

// Read gives the counters of the namespace it names: a new one starts at zero, and
// counts the segments of a connection made in it.
func TestReadCountsTheNamespacesSegments(t *testing.T) {
	n := topology.NewNS(t)
	before, err := Read(n)
	if err != nil {
		t.Fatal(err)
	}
	if before != (Counters{}) {
		t.Fatalf("a new namespace: %+v, want none sent", before)
	}
	err = n.Do(func(ns.NetNS) error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			return err
		}
		defer s.Close()
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err = io.ReadFull(s, make([]byte, 1))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := Read(n)
	if err != nil {
		t.Fatal(err)
	}
	// SYN, SYN-ACK, ACK and the byte, at least; a delayed ACK of it may follow.
	if after.Out < 4 || after.Retransmitted != 0 {
		t.Errorf("after a connection and a byte: %+v, want at least 4 sent, none again", after)
	}
	sum, err := readAll([]ns.NetNS{n, n})
	if err != nil || sum.Out < 2*after.Out {
		t.Errorf("readAll of the namespace twice: %+v, %v; want twice %+v", sum, err, after)
	}
	retransmitted, err := Watch(n)
	if err != nil {
		t.Fatal(err)
	}
	if share, err := retransmitted(); share != 0 || err != nil {
		t.Errorf("Watch with nothing sent since: %v%%, %v; want 0", share, err)
	}
}
