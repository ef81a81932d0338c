package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// Scenarios only make requests and report what came back; the Python test
// knows the demo routes and decides what is right.
var scenarioTable = map[string]func(*client){
	"basic":      scenarioBasic,
	"download":   scenarioDownload,
	"upload":     scenarioUpload,
	"trailers":   scenarioTrailers,
	"concurrent": scenarioConcurrent,
	"headers":    scenarioHeaders,
	"goaway":     scenarioGoaway,
	"abort":      scenarioAbort,
	"bulk":       scenarioBulk,
	"zerortt":    scenarioZeroRTT,
	"reset":      scenarioReset,
	"newtoken":   scenarioNewToken,
}

const (
	produceSize     = 5 << 20
	goawayDownload  = 32 << 20 // larger than quic-go's stream window can hide
	goawayFirstRead = 256 << 10
	goawayMaxProbes = 200
	goawayProbeGap  = 50 * time.Millisecond
	goawayCloseWait = 15 * time.Second
	abortAfter      = 1 << 20
	abortWait       = 15 * time.Second // an aborted exchange must end by then
	bulkStreams     = 40
	bulkSize        = 2 << 20
	ticketWait      = 5 * time.Second
)

func get(scenario, name, path string) reqSpec {
	return reqSpec{scenario: scenario, name: name, method: http.MethodGet, path: path}
}

// randomBody is n reproducible pseudo-random bytes.
func randomBody(seed uint64, n int64) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

func scenarioBasic(c *client) {
	const s = "basic"
	for _, spec := range []reqSpec{
		get(s, "hello", "/hello"),
		get(s, "query", "/user/42?tab=x&y=1"),
		get(s, "param", "/user/quic-go"),
		get(s, "bytes0", "/bytes/0"),
		get(s, "bytes100k", "/bytes/100000"),
		{scenario: s, name: "head_hello", method: http.MethodHead, path: "/hello"},
		{scenario: s, name: "head_bytes", method: http.MethodHead, path: "/bytes/1000000"},
		get(s, "not_found", "/nope"),
		{scenario: s, name: "post_hello", method: http.MethodPost, path: "/hello", body: []byte("x")},
		{scenario: s, name: "put_echo", method: http.MethodPut, path: "/echo", body: []byte("x")},
		get(s, "hints", "/hints"),
	} {
		c.do(spec)
	}
}

func scenarioDownload(c *client) {
	const s = "download"
	c.do(get(s, "bytes_large", fmt.Sprintf("/bytes/%d", c.opt.dlSize)))
	c.do(get(s, "produce", fmt.Sprintf("/produce/%d", produceSize)))
	c.do(get(s, "produce_fail", "/produce/1000000?fail_at=100000"))
	// The connection must still work after a stream was reset.
	c.do(get(s, "after_reset", "/hello"))
}

func scenarioUpload(c *client) {
	const s = "upload"
	text := http.Header{"Content-Type": {"text/plain"}}
	c.do(reqSpec{scenario: s, name: "echo_small", method: http.MethodPost, path: "/echo",
		header: text, body: []byte("hello from quic-go\n")})
	c.do(reqSpec{scenario: s, name: "echo_empty", method: http.MethodPost, path: "/echo", body: []byte{}})
	big := randomBody(c.opt.seed, c.opt.upSize)
	c.do(reqSpec{scenario: s, name: "echo_large", method: http.MethodPost, path: "/echo", body: big})
	c.do(reqSpec{scenario: s, name: "digest_large", method: http.MethodPost, path: "/digest", body: big})
}

func scenarioTrailers(c *client) {
	const s = "trailers"
	c.do(get(s, "response_trailers", "/trailers"))
	c.do(reqSpec{scenario: s, name: "head_trailers", method: http.MethodHead, path: "/trailers"})
	body := randomBody(c.opt.seed+1, 100000)
	c.do(reqSpec{scenario: s, name: "request_trailers", method: http.MethodPost, path: "/digest",
		body:    body,
		trailer: http.Header{"X-Checksum": {sha256Hex(body)}, "X-Note": {"two words"}}})
}

// concurrentSpec mixes routes so that answers cannot be swapped unnoticed.
func concurrentSpec(i int) reqSpec {
	const s = "concurrent"
	name := fmt.Sprintf("c%d", i)
	switch i % 4 {
	case 0:
		return get(s, name, "/hello")
	case 1:
		return get(s, name, fmt.Sprintf("/user/%d?n=%d", i, i))
	case 2:
		return get(s, name, fmt.Sprintf("/bytes/%d", i*997%200000))
	default:
		return reqSpec{scenario: s, name: name, method: http.MethodPost, path: "/echo",
			body: []byte(fmt.Sprintf("request %d\n", i))}
	}
}

func scenarioConcurrent(c *client) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range c.opt.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c.do(concurrentSpec(i))
		}()
	}
	close(start)
	wg.Wait()
}

func padHeaders(count, size int) http.Header {
	h := http.Header{}
	for i := range count {
		h.Set(fmt.Sprintf("X-Pad-%03d", i), strings.Repeat(string(rune('a'+i%26)), size))
	}
	return h
}

func scenarioHeaders(c *client) {
	const s = "headers"
	for _, x := range []struct {
		name        string
		count, size int
	}{
		{"pad_8x1000", 8, 1000},    // about 8 KB in total
		{"one_8000", 1, 8000},      // one long value
		{"many_90x20", 90, 20},     // many fields
		{"over_20x1000", 20, 1000}, // past the section limit
		{"over_120x10", 120, 10},   // past the field count limit
	} {
		spec := get(s, x.name, "/hello")
		spec.header = padHeaders(x.count, x.size)
		c.do(spec)
	}
}

// scenarioGoaway keeps a download open, says so ({"event":"inflight"}),
// and sends small requests until one is refused because the server's
// GOAWAY arrived (the test stops the server when it sees the event). Then
// it finishes the download and waits for the connection to close.
func scenarioGoaway(c *client) {
	const s = "goaway"
	x := c.send(get(s, "inflight", fmt.Sprintf("/bytes/%d", goawayDownload)))
	if x.resp == nil || x.readSome(goawayFirstRead) != nil {
		c.out.emit(x.finish())
		return
	}
	c.out.emit(map[string]any{"event": "inflight", "read": x.sink.n})
	for i := range goawayMaxProbes {
		r := c.do(get(s, fmt.Sprintf("probe%d", i), "/hello"))
		if r.Kind == "goaway" || c.ctx.Err() != nil {
			break
		}
		time.Sleep(goawayProbeGap)
	}
	c.out.emit(x.finish())
	select {
	case <-c.qc.Context().Done():
	case <-time.After(goawayCloseWait):
	case <-c.ctx.Done():
	}
	c.out.emit(map[string]any{"event": "closed", "conn": connClose(c.qc)})
}

// failingReader yields n zero bytes, then an error: quic-go then resets the
// request stream (H3_REQUEST_CANCELLED) in the middle of the body.
type failingReader struct{ left int }

var errUploadAborted = errors.New("upload aborted by the test")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left == 0 {
		return 0, errUploadAborted
	}
	n := min(len(p), f.left)
	clear(p[:n])
	f.left -= n
	return n, nil
}

// scenarioAbort cancels requests halfway in both directions and sends a
// body to a route that refuses it; the connection must stay usable.
func scenarioAbort(c *client) {
	const s = "abort"
	x := c.send(get(s, "cancel_download", "/bytes/1000000000"))
	if x.readSome(abortAfter) == nil {
		c.out.emit(x.abort())
	} else {
		c.out.emit(x.finish())
	}
	c.do(reqSpec{scenario: s, name: "cancel_upload_echo", method: http.MethodPost, path: "/echo",
		bodyReader: &failingReader{left: abortAfter}, timeout: abortWait})
	c.do(reqSpec{scenario: s, name: "cancel_upload_digest", method: http.MethodPost, path: "/digest",
		bodyReader: &failingReader{left: abortAfter}, timeout: abortWait})
	c.do(reqSpec{scenario: s, name: "refused_body", method: http.MethodPost, path: "/hello",
		body: randomBody(c.opt.seed, 4<<20), timeout: abortWait})
	for i := range 20 {
		c.do(get(s, fmt.Sprintf("after%d", i), "/hello"))
	}
}

// scenarioBulk runs large downloads and echoes side by side, so that
// connection-level flow control is shared by many busy streams.
func scenarioBulk(c *client) {
	const s = "bulk"
	var wg sync.WaitGroup
	body := randomBody(c.opt.seed+2, bulkSize)
	for i := range bulkStreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("b%d", i)
			if i%2 == 0 {
				c.do(get(s, name, fmt.Sprintf("/bytes/%d", bulkSize+i)))
			} else {
				c.do(reqSpec{scenario: s, name: name, method: http.MethodPost, path: "/echo", body: body})
			}
		}()
	}
	wg.Wait()
}

// ticketCache is a TLS session cache that says when a ticket arrived.
type ticketCache struct {
	tls.ClientSessionCache
	got chan struct{}
}

func (t *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	t.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case t.got <- struct{}{}:
		default:
		}
	}
}

// scenarioZeroRTT makes a connection to get a session ticket, then a
// resumed one that sends GET and HEAD as 0-RTT data (quic-go sends only
// these methods early). Each connection is reported as an event.
func scenarioZeroRTT(c *client) {
	const s = "zerortt"
	cache := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), got: make(chan struct{}, 1)}
	for round := range 2 {
		qc, err := c.dialer.dial(c.ctx, cache)
		if err != nil {
			c.out.emit(map[string]any{"event": "zerortt_conn", "round": round, "error": err.Error()})
			return
		}
		sub := newClient(c.opt, c.dialer, qc, c.out, c.ctx)
		sub.do(reqSpec{scenario: s, name: fmt.Sprintf("get%d", round), method: http3.MethodGet0RTT, path: "/hello"})
		sub.do(reqSpec{scenario: s, name: fmt.Sprintf("head%d", round), method: http3.MethodHead0RTT,
			path: "/bytes/1000"})
		ticket := false
		if round == 0 {
			select {
			case <-cache.got:
				ticket = true
			case <-time.After(ticketWait):
			}
		}
		st := qc.ConnectionState()
		c.out.emit(map[string]any{"event": "zerortt_conn", "round": round, "used_0rtt": st.Used0RTT,
			"resumed": st.TLS.DidResume, "ticket": ticket, "conn": connClose(qc)})
		_ = qc.CloseWithError(h3NoError, "")
	}
}

// tokenStore is quic-go's LRU token store that says when a NEW_TOKEN token
// arrived.
type tokenStore struct {
	quic.TokenStore
	got chan struct{}
}

func (t *tokenStore) Put(key string, token *quic.ClientToken) {
	t.TokenStore.Put(key, token)
	if token != nil {
		select {
		case t.got <- struct{}{}:
		default:
		}
	}
}

// scenarioNewToken dials two connections with one token store: the first
// should receive a NEW_TOKEN token, which quic-go presents in the second
// one's Initial (the server's counters tell whether it skipped the Retry).
func scenarioNewToken(c *client) {
	const s = "newtoken"
	store := &tokenStore{TokenStore: quic.NewLRUTokenStore(4, 4), got: make(chan struct{}, 1)}
	c.dialer.tokens = store
	defer func() { c.dialer.tokens = nil }()
	for round := range 2 {
		qc, err := c.dialer.dial(c.ctx, nil)
		if err != nil {
			c.out.emit(map[string]any{"event": "newtoken_conn", "round": round, "error": err.Error()})
			return
		}
		sub := newClient(c.opt, c.dialer, qc, c.out, c.ctx)
		sub.do(get(s, fmt.Sprintf("get%d", round), "/hello"))
		token := false
		if round == 0 {
			select {
			case <-store.got:
				token = true
			case <-time.After(ticketWait):
			}
		}
		c.out.emit(map[string]any{"event": "newtoken_conn", "round": round, "token": token,
			"conn": connClose(qc)})
		_ = qc.CloseWithError(h3NoError, "")
	}
}
