package main

// -scenario bench: the datagram echo rate (a window of datagrams in
// flight, each echo making room for the next) and the throughput of one
// bidirectional stream echo, for bench/wt_bench.py.

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/quic-go/webtransport-go"
)

// datagramRate keeps up to window datagrams of size bytes in flight for
// the duration; one without its echo after stall is taken as lost.
func datagramRate(ctx context.Context, s *webtransport.Session, window, size int,
	duration time.Duration) map[string]any {
	var echoed, inflight atomic.Int64
	var lastEcho atomic.Int64
	stop := time.Now().Add(duration)
	rctx, cancel := context.WithDeadline(ctx, stop.Add(time.Second))
	defer cancel()
	go func() {
		for {
			if _, err := s.ReceiveDatagram(rctx); err != nil {
				return
			}
			if time.Now().Before(stop) {
				echoed.Add(1)
			}
			inflight.Add(-1)
			lastEcho.Store(time.Now().UnixNano())
		}
	}()
	msg := pattern(size, 5)
	var sent int64
	start := time.Now()
	lastEcho.Store(start.UnixNano())
	for time.Now().Before(stop) {
		if inflight.Load() >= int64(window) {
			if time.Since(time.Unix(0, lastEcho.Load())) > 50*time.Millisecond {
				inflight.Store(0) // the window's datagrams are lost
			}
			time.Sleep(20 * time.Microsecond)
			continue
		}
		if err := s.SendDatagram(msg); err != nil {
			return map[string]any{"name": "bench_datagrams", "error": errText(err)}
		}
		sent++
		inflight.Add(1)
	}
	secs := duration.Seconds()
	return map[string]any{"name": "bench_datagrams", "seconds": secs, "size": size,
		"window": window, "sent": sent, "echoed": echoed.Load(),
		"echo_per_s": float64(echoed.Load()) / secs}
}

// streamEcho sends total bytes on one bidirectional stream and reads the
// echo; the goodput counts the payload once.
func streamEcho(ctx context.Context, s *webtransport.Session, total int) map[string]any {
	str, err := s.OpenStreamSync(ctx)
	if err != nil {
		return map[string]any{"name": "bench_stream", "error": errText(err)}
	}
	chunk := pattern(64<<10, 9)
	start := time.Now()
	go func() {
		for sent := 0; sent < total; {
			n := len(chunk)
			if total-sent < n {
				n = total - sent
			}
			if _, err := str.Write(chunk[:n]); err != nil {
				return
			}
			sent += n
		}
		_ = str.Close()
	}()
	buf := make([]byte, 64<<10)
	got, bad := 0, 0
	for {
		n, err := str.Read(buf)
		for i := 0; i < n; i++ {
			if buf[i] != chunk[(got+i)%len(chunk)] {
				bad++
			}
		}
		got += n
		if err == io.EOF {
			break
		}
		if err != nil {
			return map[string]any{"name": "bench_stream", "error": errText(err), "bytes": got}
		}
	}
	secs := time.Since(start).Seconds()
	return map[string]any{"name": "bench_stream", "bytes": got, "seconds": secs,
		"mbit_s": float64(got) * 8 / secs / 1e6, "ok": got == total && bad == 0}
}
