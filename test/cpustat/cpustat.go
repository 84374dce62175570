// Package cpustat tells where a benchmark round's CPU went: how long the measured
// process ran, and what share of the machine's cores was left idle. On cores that the
// clients, the proxy and the servers share, a proxy's rate is set by both: what each
// operation costs it, and how much of the cores the scheduler leaves unused while work
// waits. A rate alone does not tell the two apart.
package cpustat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/egress-router/egress-router/test/ratio"
)

// Why is what the two figures show, for a benchmark's notes.
const Why = "on cores shared by clients, proxy and servers, a rate is set by what each operation costs the proxy and by how much of the cores stays idle while work waits for one"

// Usage is what a round cost: the measured process's CPU time, and the share of all
// cores' time that no task used, in percent.
type Usage struct {
	CPU         time.Duration
	IdlePercent float64
}

// MicrosecondsPer is the CPU time per operation, in µs, of a round that did ops
// operations; 0 for none.
func (u Usage) MicrosecondsPer(ops float64) float64 {
	if ops <= 0 {
		return 0
	}
	return float64(u.CPU.Nanoseconds()) / 1e3 / ops
}

// Measure runs round and returns its usage. cpu reads the measured process's CPU time
// (a proxy's: the sum of ProcessTime over its processes); it is read before and after
// round, as is the machine's idle time.
func Measure(cpu func() (time.Duration, error), round func()) (Usage, error) {
	before, ran, err := sample(cpu)
	if err != nil {
		return Usage{}, err
	}
	round()
	after, ranAfter, err := sample(cpu)
	if err != nil {
		return Usage{}, err
	}
	return Usage{CPU: ranAfter - ran, IdlePercent: ratio.Percent(after.idle-before.idle, after.total-before.total)}, nil
}

// sample reads the machine's idle and total time, then the process's CPU time.
func sample(cpu func() (time.Duration, error)) (machine, time.Duration, error) {
	m, err := readMachine()
	if err != nil {
		return machine{}, 0, err
	}
	ran, err := cpu()
	return m, ran, err
}

// ProcessTime is how long the threads of process pid have run, from each thread's
// schedstat (nanoseconds, where the process's stat counts clock ticks). A thread that
// has exited is not counted: a round must not span threads that come and go, and the
// proxies' threads (Go's, HAProxy's, nginx's workers') live as long as their process.
func ProcessTime(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("cpustat: no threads of process %d (%v)", pid, err)
	}
	var total time.Duration
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // the thread has exited
		}
		ran, err := parseSchedstat(data)
		if err != nil {
			return 0, fmt.Errorf("cpustat: %s: %w", f, err)
		}
		total += ran
	}
	return total, nil
}

// parseSchedstat reads a thread's schedstat: time run, time waited to run (both in
// nanoseconds) and timeslices; the first is the one wanted.
func parseSchedstat(data []byte) (time.Duration, error) {
	fields := bytes.Fields(data)
	if len(fields) != 3 {
		return 0, fmt.Errorf("schedstat %q: want 3 fields", data)
	}
	ns, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("schedstat %q: %w", data, err)
	}
	return time.Duration(ns), nil
}

// machine is /proc/stat's summary line: all cores' idle time and their total, in
// clock ticks.
type machine struct {
	idle, total int64
}

func readMachine() (machine, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machine{}, fmt.Errorf("cpustat: %w", err)
	}
	m, err := parseStat(data)
	if err != nil {
		return machine{}, fmt.Errorf("cpustat: /proc/stat: %w", err)
	}
	return m, nil
}

// parseStat reads the "cpu" line: user, nice, system, idle, iowait, irq, softirq and
// steal time (guest time is counted in user's already). Idle is idle and iowait: no
// task ran.
func parseStat(data []byte) (machine, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 9 || string(fields[0]) != "cpu" {
		return machine{}, fmt.Errorf("first line %q: want cpu and 8 times", line)
	}
	var m machine
	for i, f := range fields[1:9] {
		ticks, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return machine{}, fmt.Errorf("first line %q: %w", line, err)
		}
		m.total += ticks
		if i == 3 || i == 4 {
			m.idle += ticks
		}
	}
	return m, nil
}
