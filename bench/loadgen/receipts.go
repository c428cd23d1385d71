package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"
)

// djangoPrefix is the text of the chat messages the Django-latency run posts, followed by the
// benchmark's message number (bench.load.DJANGO_PREFIX).
const djangoPrefix = "bench-django-"

// payload is what a delivery may carry: a benchmark payload {"seq", "ts", "text"} (ts: publish
// time, Unix seconds), or a chat message (Message.as_dict) whose text is djangoPrefix + number,
// timed from its created_at (ISO 8601, saved by Django just before it publishes). A chat
// message's own seq is its number in the room, not the benchmark's: the text's is used.
type payload struct {
	Seq       *int     `json:"seq"`
	Ts        *float64 `json:"ts"`
	Text      string   `json:"text"`
	CreatedAt string   `json:"created_at"`
}

// parse returns the benchmark number and its publish (or save) time in Unix seconds, and false
// for anything else (someone else's message, a frame that is not JSON).
func parse(data []byte) (int, float64, bool) {
	var p payload
	if err := json.Unmarshal(data, &p); err != nil {
		return 0, 0, false
	}
	if strings.HasPrefix(p.Text, djangoPrefix) {
		seq, err := strconv.Atoi(p.Text[len(djangoPrefix):])
		if err != nil {
			return 0, 0, false
		}
		created, err := time.Parse(time.RFC3339Nano, p.CreatedAt)
		if err != nil {
			return 0, 0, false
		}
		return seq, float64(created.Unix()) + float64(created.Nanosecond())/1e9, true
	}
	if p.Seq == nil || p.Ts == nil {
		return 0, 0, false
	}
	return *p.Seq, *p.Ts, true
}

// receipts is the tally of every delivery of every connection of the process: the latency of
// each (receipt time minus publish time, seconds, one clock) and, per benchmark message number,
// the count, the first and last receipt times and the publish time (Unix seconds). It is what
// bench.load.Receipts.from_report reads.
type receipts struct {
	mu          sync.Mutex
	Latencies   []float64       `json:"latencies"`
	Count       map[int]int     `json:"count_by_seq"`
	First       map[int]float64 `json:"first_by_seq"`
	Last        map[int]float64 `json:"last_by_seq"`
	Ts          map[int]float64 `json:"ts_by_seq"`
	LastReceipt float64         `json:"last_receipt"`
}

func newReceipts() *receipts {
	return &receipts{Latencies: []float64{}, Count: map[int]int{}, First: map[int]float64{},
		Last: map[int]float64{}, Ts: map[int]float64{}}
}

func unixNow() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// record counts one delivery received at now (Unix seconds); data that is not a benchmark
// message is ignored.
func (r *receipts) record(data []byte, now float64) {
	seq, ts, ok := parse(data)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Latencies = append(r.Latencies, now-ts)
	if _, seen := r.Ts[seq]; !seen {
		r.Ts[seq], r.First[seq] = ts, now
	}
	r.Count[seq]++
	r.Last[seq] = now
	r.LastReceipt = now
}

// delivered is how many deliveries were recorded.
func (r *receipts) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.Latencies)
}

// snapshot returns the tally as JSON, and forgets it when reset is true.
func (r *receipts) snapshot(reset bool) json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	out, _ := json.Marshal(r)
	if reset {
		r.Latencies, r.Count, r.First, r.Last, r.Ts = []float64{}, map[int]int{}, map[int]float64{}, map[int]float64{}, map[int]float64{}
		r.LastReceipt = 0
	}
	return out
}
