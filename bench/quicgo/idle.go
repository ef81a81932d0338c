package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// runIdle opens -c connections that each complete one GET and then stay
// open, kept alive by PINGs, until stdin reaches EOF (or -hold passes).
// It prints {"ready":true,...} once all are open: the caller then reads
// the server's memory. Handshakes run -parallel at a time so that the
// server is not flooded with Initials it has to drop.
func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	raw := fs.String("url", "", "https://127.0.0.1:PORT/path")
	n := fs.Int("c", 1000, "connections")
	parallel := fs.Int("parallel", 32, "handshakes in flight at once")
	perSocket := fs.Int("per-socket", 500, "connections sharing one UDP socket")
	hold := fs.Duration("hold", 10*time.Minute, "give up holding after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := parseTarget(*raw)
	if err != nil {
		return err
	}
	if *n < 1 || *n > 50000 || *parallel < 1 || *perSocket < 1 {
		return errors.New("idle: -c must be 1..50000, -parallel and -per-socket >= 1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *hold)
	defer cancel()
	start := time.Now()
	conns, trs, failed, firstErr := openIdle(ctx, t, *n, *parallel, *perSocket)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
		for _, tr := range trs {
			_ = tr.Close()
		}
	}()
	ready := map[string]any{"ready": true, "connections": *n - int(failed), "failed": failed,
		"seconds": time.Since(start).Seconds()}
	if firstErr != nil {
		ready["error"] = firstErr.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(ready); err != nil {
		return err
	}
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

func openIdle(ctx context.Context, t *target, n, parallel, perSocket int) ([]*conn, []*quic.Transport, int64, error) {
	conns := make([]*conn, n)
	var trs []*quic.Transport
	for i := 0; i < n; i += perSocket {
		tr, err := newTransport(t)
		if err != nil {
			return nil, trs, int64(n), err
		}
		trs = append(trs, tr)
	}
	var failed atomic.Int64
	var errOnce sync.Once
	var firstErr error
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	buf := make([][]byte, parallel)
	for i := range buf {
		buf[i] = make([]byte, 16<<10)
	}
	slots := make(chan int, parallel)
	for i := range parallel {
		slots <- i
	}
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			slot := <-slots
			defer func() { slots <- slot }()
			c, err := openOne(ctx, trs[i/perSocket], t, buf[slot])
			if err != nil {
				failed.Add(1)
				errOnce.Do(func() { firstErr = err })
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	return conns, trs, failed.Load(), firstErr
}

func openOne(ctx context.Context, tr *quic.Transport, t *target, buf []byte) (*conn, error) {
	hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := dial(hctx, tr, t, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if _, err := get(hctx, c, t.url, buf); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}
