// quicgoclient drives h3q-server with quic-go's HTTP/3 client (an
// implementation h3q did not write) and prints one JSON object per line, so
// that tests/integration/test_quicgo.py can assert on real results.
//
// Every request of a run goes over one QUIC connection, dialled here (not by
// http3.Transport, which may redial): "many requests on one connection" is
// then true by construction.
//
//	quicgoclient -addr 127.0.0.1:4433 -insecure -scenario basic,trailers
//	quicgoclient -addr 127.0.0.1:4433 -insecure -req "GET /hello" -req "HEAD /bytes/10"
//
// The scenarios zerortt and newtoken are the exception: each dials two more
// connections of its own (a resumed one with 0-RTT; one that presents the
// NEW_TOKEN token the first one received).
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

const (
	exitOK      = 0
	exitFailed  = 1 // the run could not happen (dial, deadline)
	exitUsage   = 2
	h3NoError   = 0x100
	maxBodyText = 4096 // bodies up to this size are also printed as text
)

type options struct {
	addr        string
	scenarios   []string
	requests    []string
	insecure    bool
	payload     int
	timeout     time.Duration
	reqTimeout  time.Duration
	dlSize      int64
	upSize      int64
	concurrency int
	seed        uint64
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func parseFlags() (*options, error) {
	o := &options{}
	var scenarios string
	var reqs stringList
	fs := flag.NewFlagSet("quicgoclient", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "", "server address 127.0.0.1:PORT (required)")
	fs.StringVar(&scenarios, "scenario", "", "comma-separated scenarios: "+strings.Join(scenarioNames(), ","))
	fs.Var(&reqs, "req", `one request "METHOD PATH" (repeatable)`)
	fs.BoolVar(&o.insecure, "insecure", false, "skip TLS certificate verification (self-signed test certs)")
	fs.IntVar(&o.payload, "payload", 1350, "UDP payload size, fixed (path MTU discovery off)")
	fs.DurationVar(&o.timeout, "timeout", 120*time.Second, "deadline for the whole run")
	fs.DurationVar(&o.reqTimeout, "req-timeout", 60*time.Second, "deadline per request")
	fs.Int64Var(&o.dlSize, "download-size", 64<<20, "bytes of the large download (scenario download)")
	fs.Int64Var(&o.upSize, "upload-size", 8<<20, "bytes of the large uploads (scenario upload)")
	fs.IntVar(&o.concurrency, "concurrency", 200, "parallel requests (scenario concurrent)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated upload bodies")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return nil, err
	}
	if o.addr == "" {
		return nil, errors.New("-addr is required")
	}
	for _, s := range strings.Split(scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, ok := scenarioTable[s]; !ok {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(scenarioNames(), ","))
		}
		o.scenarios = append(o.scenarios, s)
	}
	for i, s := range o.scenarios {
		if s == "goaway" && i != len(o.scenarios)-1 {
			return nil, errors.New("scenario goaway ends the connection: it must come last")
		}
	}
	o.requests = reqs
	if len(o.scenarios) == 0 && len(o.requests) == 0 {
		return nil, errors.New("nothing to do: give -scenario or -req")
	}
	if o.payload < 1200 || o.payload > 65527 {
		return nil, fmt.Errorf("-payload %d is out of range 1200..65527", o.payload)
	}
	// Upload bodies are held in memory; downloads are only hashed.
	if o.upSize < 0 || o.upSize > 1<<30 || o.dlSize < 0 {
		return nil, fmt.Errorf("-upload-size must be 0..%d and -download-size >= 0", 1<<30)
	}
	if o.concurrency < 1 || o.concurrency > 10000 {
		return nil, fmt.Errorf("-concurrency %d is out of range 1..10000", o.concurrency)
	}
	return o, nil
}

// printer writes JSON lines from any goroutine.
type printer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (p *printer) emit(v any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enc.Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, "quicgoclient: stdout:", err)
	}
}

// client is one HTTP/3 connection and what a scenario needs to use it.
type client struct {
	opt    *options
	dialer *dialer
	qc     *quic.Conn
	cc     *http3.ClientConn
	out    *printer
	base   string // https://addr
	ctx    context.Context
}

func newClient(o *options, d *dialer, qc *quic.Conn, out *printer, ctx context.Context) *client {
	tr := &http3.Transport{DisableCompression: true}
	return &client{opt: o, dialer: d, qc: qc, cc: tr.NewClientConn(qc), out: out,
		base: "https://" + o.addr, ctx: ctx}
}

// dialer owns the client's UDP socket, bound to the loopback address
// (quic.DialAddr would bind 0.0.0.0), and dials connections from it.
type dialer struct {
	opt    *options
	raddr  *net.UDPAddr
	tr     *quic.Transport
	n      int             // connections dialled
	tokens quic.TokenStore // NEW_TOKEN tokens, kept and presented (nil: none)
}

func newDialer(o *options) (*dialer, error) {
	raddr, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return nil, err
	}
	if !raddr.IP.IsLoopback() {
		return nil, fmt.Errorf("-addr %s is not a loopback address", o.addr)
	}
	laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if raddr.IP.To4() == nil {
		laddr = &net.UDPAddr{IP: net.IPv6loopback}
	}
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	return &dialer{opt: o, raddr: raddr, tr: &quic.Transport{Conn: udp}}, nil
}

// dial opens a connection; with a session cache it may resume and send
// 0-RTT data (DialEarly).
func (d *dialer) dial(ctx context.Context, cache tls.ClientSessionCache) (*quic.Conn, error) {
	tlsConf := &tls.Config{
		InsecureSkipVerify: d.opt.insecure, //nolint:gosec // test certificates are self-signed
		NextProtos:         []string{http3.NextProtoH3},
		ServerName:         "localhost",
		ClientSessionCache: cache,
	}
	quicConf := &quic.Config{
		// Pinned datagram size: loopback's MTU is 64 KB, which would make
		// numbers incomparable with other peers.
		InitialPacketSize:       uint16(d.opt.payload),
		DisablePathMTUDiscovery: true,
		MaxIdleTimeout:          30 * time.Second,
		HandshakeIdleTimeout:    10 * time.Second,
		MaxIncomingStreams:      -1, // an HTTP/3 server opens no bidi streams
		Allow0RTT:               cache != nil,
		TokenStore:              d.tokens,
	}
	d.n++
	if cache != nil {
		return d.tr.DialEarly(ctx, d.raddr, tlsConf, quicConf)
	}
	return d.tr.Dial(ctx, d.raddr, tlsConf, quicConf)
}

// connClose describes how the connection ended (or that it has not).
func connClose(qc *quic.Conn) map[string]any {
	select {
	case <-qc.Context().Done():
	default:
		return map[string]any{"closed": false}
	}
	r := map[string]any{"closed": true}
	fillError(r, context.Cause(qc.Context()))
	return r
}

func scenarioNames() []string {
	names := make([]string, 0, len(scenarioTable))
	for n := range scenarioTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func run(o *options, out *printer) int {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	start := time.Now()
	d, err := newDialer(o)
	if err == nil {
		defer d.tr.Close()
	}
	var qc *quic.Conn
	if err == nil {
		qc, err = d.dial(ctx, nil)
	}
	if err != nil {
		out.emit(map[string]any{"summary": true, "ok": false, "error": "dial: " + err.Error()})
		return exitFailed
	}
	c := newClient(o, d, qc, out, ctx)
	for _, r := range o.requests {
		c.runRequestFlag(r)
	}
	for _, s := range o.scenarios {
		scenarioTable[s](c)
	}
	summary := map[string]any{
		"summary":     true,
		"ok":          ctx.Err() == nil,
		"connections": d.n,
		"elapsed_ms":  time.Since(start).Milliseconds(),
		"conn":        connClose(qc),
	}
	if ctx.Err() != nil {
		summary["error"] = "run deadline exceeded (-timeout " + o.timeout.String() + ")"
	}
	_ = qc.CloseWithError(h3NoError, "")
	out.emit(summary)
	if ctx.Err() != nil {
		return exitFailed
	}
	return exitOK
}

func main() {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quicgoclient:", err)
		os.Exit(exitUsage)
	}
	os.Exit(run(o, &printer{enc: json.NewEncoder(os.Stdout)}))
}
