// Command loadgen is the benchmark's load generator: thousands of Centrifugo clients
// (centrifuge-go) or Channels clients (gorilla/websocket) in one Go process, cheap enough that
// the servers, not the client, are what a benchmark measures. bench/loadgen.py drives it: one
// JSON command per line on stdin, one JSON reply per line on stdout (errors as {"error": ...}).
//
// Commands:
//
//	{"cmd": "open", "spec": {...}, "count": N, "concurrency": C, "deadline": seconds}
//	    -> {"group": G, "opened": n, "handshakes": [seconds...], "errors": {kind: count}, "seconds": s}
//	{"cmd": "close", "group": G}            -> {"closed": n}   (G < 0: every group)
//	{"cmd": "delivered"}                    -> {"delivered": n}
//	{"cmd": "receipts", "reset": bool}      -> the tally (receipts.go)
//	{"cmd": "cpu"}                          -> {"cpu_seconds": user + system of this process}
//
// LOADGEN_CPU_PROFILE=<file> writes a CPU profile of the whole run (go tool pprof).
//
// Handshake time is connect + subscribe (Centrifugo) or connect + the history frame (Channels).
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"
)

type command struct {
	Cmd         string  `json:"cmd"`
	Spec        spec    `json:"spec"`
	Count       int     `json:"count"`
	Concurrency int     `json:"concurrency"`
	Deadline    float64 `json:"deadline"`
	Group       int     `json:"group"`
	Reset       bool    `json:"reset"`
}

type openResult struct {
	Group      int            `json:"group"`
	Opened     int            `json:"opened"`
	Handshakes []float64      `json:"handshakes"`
	Errors     map[string]int `json:"errors"`
	Seconds    float64        `json:"seconds"`
}

// errKind names an error by its kind, without the addresses and ports that make each one unique.
func errKind(err error) string {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EMFILE):
		return "too many open files"
	}
	parts := strings.Split(err.Error(), ": ")
	return parts[len(parts)-1]
}

type generator struct {
	tally  *receipts
	mu     sync.Mutex
	groups map[int][]conn
	next   int
}

// open opens count connections of s, at most concurrency handshakes in flight, and gives up on
// those not started within deadline seconds.
func (g *generator) open(s spec, count, concurrency int, deadline float64) (openResult, error) {
	if len(s.Rooms) == 0 {
		return openResult{}, errors.New("spec.rooms is empty")
	}
	var tlsConf *tls.Config
	if strings.HasPrefix(s.URL, "wss://") {
		var err error
		if tlsConf, err = tlsConfig(s.CAFile); err != nil {
			return openResult{}, err
		}
	}
	dial := openCentrifugo
	if s.Path == "channels" {
		dial = openChannels
	} else if s.Path != "centrifugo" {
		return openResult{}, fmt.Errorf("unknown path %q", s.Path)
	}
	if concurrency < 1 {
		concurrency = 1
	}
	started := time.Now()
	stopAt := started.Add(time.Duration(deadline * float64(time.Second)))
	result := openResult{Handshakes: []float64{}, Errors: map[string]int{}}
	var mu sync.Mutex
	var opened []conn
	slots := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		slots <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-slots; wg.Done() }()
			if time.Now().After(stopAt) {
				mu.Lock()
				result.Errors["deadline"]++
				mu.Unlock()
				return
			}
			t0 := time.Now()
			c, err := dial(s, tlsConf, i, g.tally)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				result.Errors[errKind(err)]++
				return
			}
			result.Handshakes = append(result.Handshakes, time.Since(t0).Seconds())
			opened = append(opened, c)
		}(i)
	}
	wg.Wait()
	result.Seconds = time.Since(started).Seconds()
	result.Opened = len(opened)
	g.mu.Lock()
	g.next++
	result.Group = g.next
	g.groups[result.Group] = opened
	g.mu.Unlock()
	return result, nil
}

// close closes the connections of group (every group when group < 0), 500 at a time.
func (g *generator) close(group int) int {
	g.mu.Lock()
	var conns []conn
	for id, members := range g.groups {
		if group < 0 || id == group {
			conns = append(conns, members...)
			delete(g.groups, id)
		}
	}
	g.mu.Unlock()
	slots := make(chan struct{}, 500)
	var wg sync.WaitGroup
	for _, c := range conns {
		slots <- struct{}{}
		wg.Add(1)
		go func(c conn) { defer func() { <-slots; wg.Done() }(); c.close() }(c)
	}
	wg.Wait()
	return len(conns)
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}

func (g *generator) handle(c command) (any, error) {
	switch c.Cmd {
	case "open":
		return g.open(c.Spec, c.Count, c.Concurrency, c.Deadline)
	case "close":
		return map[string]int{"closed": g.close(c.Group)}, nil
	case "delivered":
		return map[string]int{"delivered": g.tally.delivered()}, nil
	case "receipts":
		return g.tally.snapshot(c.Reset), nil
	case "cpu":
		return map[string]float64{"cpu_seconds": cpuSeconds()}, nil
	}
	return nil, fmt.Errorf("unknown command %q", c.Cmd)
}

func main() {
	// LOADGEN_CPU_PROFILE=<file>: a CPU profile of the whole run (go tool pprof build/loadgen <file>).
	if path := os.Getenv("LOADGEN_CPU_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	g := &generator{tally: newReceipts(), groups: map[int][]conn{}}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var c command
		var reply any
		err := json.Unmarshal(in.Bytes(), &c)
		if err == nil {
			reply, err = g.handle(c)
		}
		if err != nil {
			reply = map[string]string{"error": err.Error()}
		}
		if err := out.Encode(reply); err != nil {
			os.Exit(1)
		}
	}
	g.close(-1)
}
