// wtgoclient drives h3q-server's WebTransport echo (/wt/echo) with
// webtransport-go v0.10 (draft-02, on quic-go): an implementation h3q did
// not write. It prints one JSON object per check, then a summary line, so
// that tests/integration/test_wtgo.py can assert on real results. It only
// reports; the test decides.
//
//	wtgoclient -url https://127.0.0.1:4433/wt/echo -insecure
//	wtgoclient -url https://127.0.0.1:4433/wt/nowhere -insecure -scenario refused
//	wtgoclient -url https://127.0.0.1:4433/wt/echo -insecure -scenario bench
//	wtgoclient -serve 127.0.0.1:4434 -cert cert.pem -key key.pem   (an echo server)
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/quic-go/webtransport-go"
)

const (
	exitOK     = 0
	exitFailed = 1 // the run could not happen (dial, deadline)
	exitUsage  = 2
	closeCode  = 7
)

type options struct {
	url       string
	serve     string
	cert, key string
	window    int
	dgramSize int
	seconds   time.Duration
	streamMB  int
	payload   int
	scenario  string
	insecure  bool
	datagrams int
	uniSize   int
	bidi      int
	bidiSize  int
	timeout   time.Duration
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// pattern is what every stream carries: byte i of stream seed is
// (i*31 + seed) % 256, so the test knows it without a copy.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*31 + seed) % 256)
	}
	return b
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// datagramEcho sends each datagram until its echo arrives (datagrams may
// be lost); reports how many came back unchanged.
func datagramEcho(ctx context.Context, s *webtransport.Session, n int) map[string]any {
	echoed, mismatched := 0, 0
	for i := 0; i < n; i++ {
		msg := append([]byte(fmt.Sprintf("datagram %d ", i)), pattern(i*13%900, i)...)
		ok := false
		for attempt := 0; attempt < 3 && !ok; attempt++ {
			if err := s.SendDatagram(msg); err != nil {
				return map[string]any{"name": "datagrams", "error": errText(err)}
			}
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			got, err := s.ReceiveDatagram(rctx)
			cancel()
			if err != nil {
				continue
			}
			if bytes.Equal(got, msg) {
				ok = true
			} else {
				mismatched++
			}
		}
		if ok {
			echoed++
		}
	}
	return map[string]any{"name": "datagrams", "sent": n, "echoed": echoed,
		"mismatched": mismatched}
}

// uniEcho sends size bytes on a unidirectional stream; the echo comes back
// on a stream the server opens after our FIN.
func uniEcho(ctx context.Context, s *webtransport.Session, size int) map[string]any {
	sent := pattern(size, 1)
	str, err := s.OpenUniStreamSync(ctx)
	if err == nil {
		_, err = str.Write(sent)
	}
	if err == nil {
		err = str.Close()
	}
	if err != nil {
		return map[string]any{"name": "uni", "error": errText(err)}
	}
	in, err := s.AcceptUniStream(ctx)
	if err != nil {
		return map[string]any{"name": "uni", "error": errText(err)}
	}
	got, err := io.ReadAll(in)
	return map[string]any{"name": "uni", "sent": len(sent), "got": len(got),
		"same": bytes.Equal(got, sent), "sha256": digest(got), "error": errText(err)}
}

// bidiEcho runs n bidirectional streams at once, each with its own bytes.
func bidiEcho(ctx context.Context, s *webtransport.Session, n, size int) map[string]any {
	var wg sync.WaitGroup
	same := make([]bool, n)
	errs := make([]string, n)
	werrs := make([]string, n)
	var wwg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sent := pattern(size+i, 10+i)
			str, err := s.OpenStreamSync(ctx)
			if err != nil {
				errs[i] = errText(err)
				return
			}
			wwg.Add(1)
			go func() {
				defer wwg.Done()
				_, werr := str.Write(sent)
				if werr == nil {
					werr = str.Close()
				}
				werrs[i] = errText(werr)
			}()
			got, err := io.ReadAll(str)
			if err != nil {
				errs[i] = errText(err)
			}
			same[i] = bytes.Equal(got, sent)
		}(i)
	}
	wg.Wait()
	wwg.Wait()
	count := 0
	for _, ok := range same {
		if ok {
			count++
		}
	}
	first := ""
	for i, e := range errs {
		if e == "" {
			e = werrs[i]
		}
		if e != "" {
			first = fmt.Sprintf("stream %d: read %q write %q", i, errs[i], werrs[i])
			break
		}
	}
	return map[string]any{"name": "bidi", "streams": n, "same": count, "error": first}
}

func run(o options) int {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	d := webtransport.Dialer{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: o.insecure},
		QUICConfig:      quicConfig(o.payload),
	}
	defer d.Close()
	rsp, s, err := d.Dial(ctx, o.url, nil)
	status := 0
	if rsp != nil {
		status = rsp.StatusCode
	}
	emit(map[string]any{"name": "session", "status": status, "error": errText(err)})
	if o.scenario == "bench" && err == nil {
		emit(datagramRate(ctx, s, o.window, o.dgramSize, o.seconds))
		emit(streamEcho(ctx, s, o.streamMB<<20))
		_ = s.CloseWithError(0, "")
		emit(map[string]any{"summary": true, "ok": ctx.Err() == nil})
		return exitOK
	}
	if o.scenario == "refused" {
		emit(map[string]any{"summary": true, "ok": err != nil})
		return exitOK
	}
	if err != nil {
		emit(map[string]any{"summary": true, "ok": false})
		return exitFailed
	}
	emit(datagramEcho(ctx, s, o.datagrams))
	emit(uniEcho(ctx, s, o.uniSize))
	emit(bidiEcho(ctx, s, o.bidi, o.bidiSize))
	cerr := s.CloseWithError(closeCode, "done")
	<-s.Context().Done()
	var sessErr *webtransport.SessionError
	remote := errors.As(context.Cause(s.Context()), &sessErr) && sessErr.Remote
	emit(map[string]any{"name": "close", "error": errText(cerr), "closed_by_server": remote})
	emit(map[string]any{"summary": true, "ok": ctx.Err() == nil})
	return exitOK
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "https://host:port/path of the WebTransport endpoint")
	flag.StringVar(&o.scenario, "scenario", "echo", "echo | refused | bench")
	flag.StringVar(&o.serve, "serve", "", "run an echo server on this address instead")
	flag.StringVar(&o.cert, "cert", "", "PEM certificate (-serve)")
	flag.StringVar(&o.key, "key", "", "PEM key (-serve)")
	flag.IntVar(&o.window, "window", 32, "bench: datagrams in flight")
	flag.IntVar(&o.dgramSize, "dgram-size", 1000, "bench: datagram payload bytes")
	flag.DurationVar(&o.seconds, "seconds", 5*time.Second, "bench: datagram phase length")
	flag.IntVar(&o.streamMB, "stream-mb", 64, "bench: MiB echoed on one bidi stream")
	flag.IntVar(&o.payload, "payload", 0, "pin UDP payloads to this size (0: quic-go's default)")
	flag.BoolVar(&o.insecure, "insecure", false, "accept any server certificate")
	flag.IntVar(&o.datagrams, "datagrams", 50, "datagrams to echo")
	flag.IntVar(&o.uniSize, "uni-size", 100000, "bytes on the unidirectional stream")
	flag.IntVar(&o.bidi, "bidi", 10, "bidirectional streams at once")
	flag.IntVar(&o.bidiSize, "bidi-size", 20000, "bytes per bidirectional stream (+ its index)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "limit for the whole run")
	flag.Parse()
	if o.serve != "" {
		os.Exit(serve(o.serve, o.cert, o.key, o.payload))
	}
	if o.url == "" {
		fmt.Fprintln(os.Stderr, "usage: wtgoclient -url https://host:port/path [-insecure]")
		os.Exit(exitUsage)
	}
	os.Exit(run(o))
}
