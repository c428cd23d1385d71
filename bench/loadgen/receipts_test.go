package main

import (
	"encoding/json"
	"testing"
)

func TestDjangoMessagesAreTimedFromCreatedAtAndNumberedByTheirText(t *testing.T) {
	r := newReceipts()
	// A chat message carries its number in the room as "seq" (Message.as_dict): the benchmark's is in the text.
	r.record([]byte(`{"id":1,"seq":812,"text":"bench-django-3","created_at":"2026-01-01T00:00:00.250000+00:00"}`), 1767225601.0)
	r.record([]byte(`{"seq":4,"ts":1e12,"text":"xx"}`), 5.0) // in the future: negative latency, still counted
	r.record([]byte(`{"text":"someone else's message","seq":9,"created_at":"2026-01-01T00:00:00+00:00"}`), 6.0)
	r.record([]byte(`not json`), 7.0)
	if r.delivered() != 2 {
		t.Fatalf("delivered = %d, want 2", r.delivered())
	}
	if r.Count[3] != 1 || r.Count[4] != 1 || len(r.Count) != 2 {
		t.Fatalf("count_by_seq = %v", r.Count)
	}
	if r.Ts[3] != 1767225600.25 || r.Latencies[0] != 0.75 {
		t.Fatalf("ts = %v, latency = %v", r.Ts[3], r.Latencies[0])
	}
}

func TestSnapshotResetForgetsEveryDelivery(t *testing.T) {
	r := newReceipts()
	r.record([]byte(`{"seq":1,"ts":1.0}`), 2.0)
	r.record([]byte(`{"seq":1,"ts":1.0}`), 3.0)
	var got map[string]any
	if err := json.Unmarshal(r.snapshot(true), &got); err != nil {
		t.Fatal(err)
	}
	if got["count_by_seq"].(map[string]any)["1"].(float64) != 2 || got["last_receipt"].(float64) != 3.0 {
		t.Fatalf("snapshot = %v", got)
	}
	if first := got["first_by_seq"].(map[string]any)["1"].(float64); first != 2.0 {
		t.Fatalf("first receipt = %v, want 2", first)
	}
	if r.delivered() != 0 || len(r.Count) != 0 {
		t.Fatalf("not reset: %d deliveries", r.delivered())
	}
}
