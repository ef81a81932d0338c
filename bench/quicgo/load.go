package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

type loadOpts struct {
	target   *target
	conns    int
	streams  int
	total    int64         // -n: total requests (when duration is 0)
	duration time.Duration // -D: run for this long
	timeout  time.Duration
}

// tally is what one worker saw; workers merge theirs at the end.
type tally struct {
	ok, failed uint64
	bytes      uint64
	lat        []time.Duration
	last       time.Time
	firstErr   error
}

func parseLoad(args []string) (*loadOpts, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	raw := fs.String("url", "", "https://127.0.0.1:PORT/path")
	c := fs.Int("c", 1, "connections")
	s := fs.Int("s", 1, "concurrent requests per connection")
	n := fs.Int64("n", 0, "total requests (default 1000 without -D)")
	d := fs.Float64("D", 0, "seconds to run (in-flight requests at the end are not counted)")
	to := fs.Float64("timeout", 0, "seconds for the whole run (default 30, or D+30)")
	fs.Bool("json", true, "print JSON (always; accepted for h3q-bench's flags)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *raw == "" && fs.NArg() == 1 {
		*raw = fs.Arg(0)
	}
	t, err := parseTarget(*raw)
	if err != nil {
		return nil, err
	}
	o := &loadOpts{target: t, conns: *c, streams: *s, total: *n,
		duration: time.Duration(*d * float64(time.Second))}
	if o.conns < 1 || o.conns > 10000 || o.streams < 1 || o.streams > 10000 {
		return nil, errors.New("-c and -s must be 1..10000")
	}
	if o.duration == 0 && o.total == 0 {
		o.total = 1000
	}
	o.timeout = time.Duration(*to * float64(time.Second))
	if o.timeout == 0 {
		o.timeout = 30*time.Second + o.duration
	}
	return o, nil
}

// dialAll opens every connection before any request starts (as h3q-bench
// does), each on a socket of its own.
func dialAll(ctx context.Context, o *loadOpts) ([]*conn, []*quic.Transport, error) {
	conns := make([]*conn, o.conns)
	trs := make([]*quic.Transport, o.conns)
	errs := make([]error, o.conns)
	var wg sync.WaitGroup
	for i := range conns {
		tr, err := newTransport(o.target)
		if err != nil {
			return nil, trs, err
		}
		trs[i] = tr
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], errs[i] = dial(ctx, tr, o.target, 0)
		}()
	}
	wg.Wait()
	return conns, trs, errors.Join(errs...)
}

// worker issues requests back to back on one connection until the budget
// (-n) or the deadline (-D) runs out.
func worker(ctx context.Context, o *loadOpts, c *conn, budget *budget, end time.Time, t *tally) {
	buf := make([]byte, 64<<10)
	for budget.take() {
		if !end.IsZero() && !time.Now().Before(end) {
			return
		}
		start := time.Now()
		n, err := get(ctx, c, o.target.url, buf)
		done := time.Now()
		if !end.IsZero() && done.After(end) {
			return // finished after the end of -D: not counted
		}
		if err != nil {
			t.failed++
			if t.firstErr == nil {
				t.firstErr = err
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		t.ok++
		t.bytes += uint64(n)
		t.lat = append(t.lat, done.Sub(start))
		t.last = done
	}
}

func get(ctx context.Context, c *conn, url string, buf []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.cc.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var total int64
	for {
		n, err := resp.Body.Read(buf)
		total += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, err
		}
	}
	if resp.StatusCode >= 400 {
		return total, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != total {
		return total, fmt.Errorf("body %d bytes, content-length %d", total, resp.ContentLength)
	}
	return total, nil
}

// budget hands out the -n requests; unlimited with -D.
type budget struct {
	mu        sync.Mutex
	left      int64
	unlimited bool
}

func (b *budget) take() bool {
	if b.unlimited {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left <= 0 {
		return false
	}
	b.left--
	return true
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

func runLoad(args []string) error {
	o, err := parseLoad(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	t0 := time.Now()
	conns, trs, err := dialAll(ctx, o)
	defer func() {
		for i, c := range conns {
			if c != nil {
				c.close()
			}
			if trs[i] != nil {
				_ = trs[i].Close()
			}
		}
	}()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	connectMs := float64(time.Since(t0)) / float64(time.Millisecond)
	start := time.Now()
	var end time.Time
	runCtx := ctx
	if o.duration > 0 {
		end = start.Add(o.duration)
		var stop context.CancelFunc
		// Requests still in flight at the end are cancelled, not counted.
		runCtx, stop = context.WithDeadline(ctx, end.Add(10*time.Millisecond))
		defer stop()
	}
	b := &budget{left: o.total, unlimited: o.duration > 0}
	tallies := make([]tally, o.conns*o.streams)
	var wg sync.WaitGroup
	for i := range tallies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(runCtx, o, conns[i/o.streams], b, end, &tallies[i])
		}()
	}
	wg.Wait()
	return report(o, tallies, start, end, connectMs, b)
}

func report(o *loadOpts, tallies []tally, start, end time.Time, connectMs float64, b *budget) error {
	var sum tally
	for i := range tallies {
		t := &tallies[i]
		sum.ok += t.ok
		sum.failed += t.failed
		sum.bytes += t.bytes
		sum.lat = append(sum.lat, t.lat...)
		if t.last.After(sum.last) {
			sum.last = t.last
		}
		if sum.firstErr == nil {
			sum.firstErr = t.firstErr
		}
	}
	if !b.unlimited {
		sum.failed += uint64(b.left) // never started: the run ended early
	}
	seconds := 0.0
	if !sum.last.IsZero() {
		seconds = sum.last.Sub(start).Seconds()
	}
	if !end.IsZero() {
		seconds = end.Sub(start).Seconds()
	}
	sort.Slice(sum.lat, func(i, j int) bool { return sum.lat[i] < sum.lat[j] })
	per := func(v float64) float64 {
		if seconds <= 0 {
			return 0
		}
		return v / seconds
	}
	out := map[string]any{
		"requests": sum.ok + sum.failed, "ok": sum.ok, "failed": sum.failed,
		"seconds": seconds, "req_per_s": per(float64(sum.ok)), "body_bytes": sum.bytes,
		"goodput_mbit_s": per(float64(sum.bytes) * 8 / 1e6),
		"latency_ms": map[string]float64{"p50": pct(sum.lat, 50), "p90": pct(sum.lat, 90),
			"p99": pct(sum.lat, 99), "max": pct(sum.lat, 100)},
		"connect_ms": connectMs, "connections": o.conns, "streams": o.streams,
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return err
	}
	if sum.firstErr != nil {
		fmt.Fprintln(os.Stderr, "quicgo-bench: request failed:", sum.firstErr)
	}
	if sum.failed > 0 || sum.ok == 0 {
		os.Exit(1)
	}
	return nil
}
