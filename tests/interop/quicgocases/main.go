// quicgocases runs one QUIC Interop Runner test case against an HTTP/3
// server with quic-go's client and prints one JSON object describing what
// happened (files with status, size and SHA-256; negotiated version; TLS
// resumption and 0-RTT; paths used). tests/interop/run.py judges it: this
// program reports, it does not decide pass or fail.
//
//	quicgocases -addr 127.0.0.1:4433 -case transfer /f1 /f2 /f3
//
// Cases: handshake, transfer, multiplexing, http3, ipv6 (one connection,
// files fetched in parallel), resumption and zerortt (two connections, the
// second resumed, with 0-RTT for zerortt), keyupdate (a transfer; quic-go
// updates its keys after its first 100 packets: the qlog written to
// -qlog-dir shows it), v2 (QUIC v2 offered first), rebind-port (the UDP
// socket changes under the connection half-way through the transfer, as
// a NAT would do) and connectionmigration (a new path probed and switched
// to half-way). Everything stays on loopback.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/qlog"
)

type fileResult struct {
	Path   string `json:"path"`
	Status int    `json:"status"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Error  string `json:"error,omitempty"`
}

type connResult struct {
	Version  string       `json:"version"`
	ALPN     string       `json:"alpn"`
	Cipher   string       `json:"cipher"`
	Resumed  bool         `json:"resumed"`
	Used0RTT bool         `json:"used_0rtt"`
	Files    []fileResult `json:"files"`
	Local    []string     `json:"local_addrs"` // client addresses used, in order
	Error    string       `json:"error,omitempty"`
}

type report struct {
	Case  string       `json:"case"`
	Conns []connResult `json:"conns"`
	Error string       `json:"error,omitempty"`
}

type options struct {
	addr     string
	testCase string
	paths    []string
	qlogDir  string
	timeout  time.Duration
	// migrateIP: connectionmigration moves to this local IP (e.g.
	// 127.0.0.2) instead of a new port of the same one.
	migrateIP string
}

func main() {
	o := options{}
	flag.StringVar(&o.addr, "addr", "", "server address, 127.0.0.1:PORT or [::1]:PORT")
	flag.StringVar(&o.testCase, "case", "", "test case name")
	flag.StringVar(&o.qlogDir, "qlog-dir", "", "write the client's qlog here")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "deadline of the whole case")
	flag.StringVar(&o.migrateIP, "migrate-ip", "", "connectionmigration: the new path's local IP (default: the same, a new port)")
	flag.Parse()
	o.paths = flag.Args()
	if o.addr == "" || o.testCase == "" || len(o.paths) == 0 {
		fmt.Fprintln(os.Stderr, "usage: quicgocases -addr HOST:PORT -case NAME PATH...")
		os.Exit(2)
	}
	if o.qlogDir != "" {
		os.Setenv("QLOGDIR", o.qlogDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	r := run(ctx, &o)
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

func run(ctx context.Context, o *options) report {
	r := report{Case: o.testCase}
	raddr, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil || !raddr.IP.IsLoopback() {
		r.Error = fmt.Sprintf("-addr %s must be a loopback address (%v)", o.addr, err)
		return r
	}
	switch o.testCase {
	case "resumption", "zerortt":
		cache := newTicketCache()
		for round := range 2 {
			c := dialAndFetch(ctx, o, raddr, cache, o.testCase == "zerortt" && round == 1)
			r.Conns = append(r.Conns, c)
			if c.Error != "" {
				break
			}
			if round == 0 && !cache.wait(5*time.Second) {
				r.Error = "no session ticket within 5 s"
				break
			}
		}
	default:
		r.Conns = append(r.Conns, dialAndFetch(ctx, o, raddr, nil, false))
	}
	return r
}

// ticketCache tells when the server's session ticket arrived.
type ticketCache struct {
	tls.ClientSessionCache
	got chan struct{}
}

func newTicketCache() *ticketCache {
	return &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), got: make(chan struct{}, 1)}
}

func (t *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	t.ClientSessionCache.Put(key, cs)
	select {
	case t.got <- struct{}{}:
	default:
	}
}

func (t *ticketCache) wait(d time.Duration) bool {
	select {
	case <-t.got:
		return true
	case <-time.After(d):
		return false
	}
}

func listenLoopback(raddr *net.UDPAddr) (*net.UDPConn, error) {
	laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if raddr.IP.To4() == nil {
		laddr = &net.UDPAddr{IP: net.IPv6loopback}
	}
	return net.ListenUDP("udp", laddr)
}

func dialAndFetch(ctx context.Context, o *options, raddr *net.UDPAddr, cache *ticketCache, early bool) connResult {
	var res connResult
	udp, err := listenLoopback(raddr)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	// Only rebind-port needs the wrapper; quic-go uses its fast paths
	// (GSO, ECN) on a plain *net.UDPConn.
	var sock *rebindingConn
	var pc net.PacketConn = udp
	if o.testCase == "rebind-port" {
		sock = newRebindingConn(udp)
		pc = sock
	}
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	tlsConf := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // loopback test server, self-signed
		NextProtos:         []string{http3.NextProtoH3},
		ServerName:         "localhost",
	}
	if cache != nil {
		tlsConf.ClientSessionCache = cache
	}
	qconf := &quic.Config{
		InitialPacketSize:       1350,
		DisablePathMTUDiscovery: true,
		MaxIdleTimeout:          30 * time.Second,
		HandshakeIdleTimeout:    10 * time.Second,
		Allow0RTT:               early,
	}
	if o.qlogDir != "" {
		qconf.Tracer = qlog.DefaultConnectionTracer
	}
	if o.testCase == "v2" {
		qconf.Versions = []quic.Version{quic.Version2, quic.Version1}
	}
	res.Local = append(res.Local, udp.LocalAddr().String())
	var qc *quic.Conn
	if early {
		qc, err = tr.DialEarly(ctx, raddr, tlsConf, qconf)
	} else {
		qc, err = tr.Dial(ctx, raddr, tlsConf, qconf)
	}
	if err != nil {
		res.Error = "dial: " + err.Error()
		return res
	}
	defer qc.CloseWithError(0x100, "")
	cc := (&http3.Transport{DisableCompression: true}).NewClientConn(qc)
	var mid func() string
	switch o.testCase {
	case "rebind-port":
		mid = func() string { return sock.rebind(raddr) }
	case "connectionmigration":
		mid = func() string { return migrate(ctx, qc, raddr, o.migrateIP) }
	}
	method := http.MethodGet
	if early {
		method = http3.MethodGet0RTT
	}
	res.Files = fetchAll(ctx, cc, o, method, mid, &res)
	st := qc.ConnectionState()
	res.Version = fmt.Sprintf("0x%08x", uint32(st.Version))
	res.ALPN = st.TLS.NegotiatedProtocol
	res.Cipher = tls.CipherSuiteName(st.TLS.CipherSuite)
	res.Resumed = st.TLS.DidResume
	res.Used0RTT = st.Used0RTT
	return res
}

// fetchAll fetches every path in parallel on one connection. mid, when
// set, runs once the first response has delivered half of its body; what
// it returns is recorded as a local address (or an error).
func fetchAll(ctx context.Context, cc *http3.ClientConn, o *options, method string,
	mid func() string, res *connResult) []fileResult {
	out := make([]fileResult, len(o.paths))
	var once sync.Once
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, p := range o.paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			half := func() {
				if mid != nil && i == 0 {
					once.Do(func() {
						a := mid()
						mu.Lock()
						res.Local = append(res.Local, a)
						mu.Unlock()
					})
				}
			}
			out[i] = fetch(ctx, cc, o.addr, method, p, half)
		}()
	}
	wg.Wait()
	return out
}

func fetch(ctx context.Context, cc *http3.ClientConn, addr, method, path string, half func()) fileResult {
	fr := fileResult{Path: path}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, nil)
	if err != nil {
		fr.Error = err.Error()
		return fr
	}
	resp, err := cc.RoundTrip(req)
	if err != nil {
		fr.Error = err.Error()
		return fr
	}
	defer resp.Body.Close()
	fr.Status = resp.StatusCode
	h := sha256.New()
	buf := make([]byte, 64<<10)
	halfAt := resp.ContentLength / 2
	for {
		n, err := resp.Body.Read(buf)
		h.Write(buf[:n])
		fr.Size += int64(n)
		if halfAt > 0 && fr.Size >= halfAt {
			half()
			halfAt = 0
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fr.Error = err.Error()
			break
		}
	}
	fr.SHA256 = hex.EncodeToString(h.Sum(nil))
	return fr
}

// migrate probes a new path from a new socket (on ip when given) and
// switches to it.
func migrate(ctx context.Context, qc *quic.Conn, raddr *net.UDPAddr, ip string) string {
	udp, err := listenLoopback(raddr)
	if ip != "" {
		if udp != nil {
			udp.Close()
		}
		udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	}
	if err != nil {
		return "error: " + err.Error()
	}
	p, err := qc.AddPath(&quic.Transport{Conn: udp})
	if err != nil {
		udp.Close()
		return "error: add path: " + err.Error()
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Probe(pctx); err != nil {
		return "error: probe: " + err.Error()
	}
	if err := p.Switch(); err != nil {
		return "error: switch: " + err.Error()
	}
	return udp.LocalAddr().String()
}

// rebindingConn is the client's UDP socket as a NAT would present it: at
// rebind() the packets start leaving from a new port (the connection is
// not told). Like a NAT whose old mapping still delivers for a while,
// what arrives on the old port is read for oldPortGrace more.
type rebindingConn struct {
	mu       sync.Mutex
	cur      *net.UDPConn
	all      []*net.UDPConn
	in       chan packet
	closed   chan struct{}
	once     sync.Once
	deadline time.Time     // of reads
	wake     chan struct{} // closed when the deadline changes
}

type packet struct {
	b    []byte
	from net.Addr
}

const oldPortGrace = time.Second

func newRebindingConn(u *net.UDPConn) *rebindingConn {
	c := &rebindingConn{cur: u, all: []*net.UDPConn{u}, in: make(chan packet, 256),
		closed: make(chan struct{}), wake: make(chan struct{})}
	go c.pump(u)
	return c
}

// pump moves u's datagrams into c.in until u is closed.
func (c *rebindingConn) pump(u *net.UDPConn) {
	for {
		b := make([]byte, 65536)
		n, a, err := u.ReadFrom(b)
		if err != nil {
			return
		}
		select {
		case c.in <- packet{b[:n], a}:
		case <-c.closed:
			return
		}
	}
}

func (c *rebindingConn) conn() *net.UDPConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func (c *rebindingConn) rebind(raddr *net.UDPAddr) string {
	udp, err := listenLoopback(raddr)
	if err != nil {
		return "error: " + err.Error()
	}
	c.mu.Lock()
	old := c.cur
	c.cur = udp
	c.all = append(c.all, udp)
	c.mu.Unlock()
	go c.pump(udp)
	time.AfterFunc(oldPortGrace, func() { old.Close() })
	return udp.LocalAddr().String()
}

func (c *rebindingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		deadline, wake := c.deadline, c.wake
		c.mu.Unlock()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			expired = t.C
		}
		select {
		case p := <-c.in:
			return copy(b, p.b), p.from, nil
		case <-c.closed:
			return 0, nil, net.ErrClosed
		case <-expired:
			return 0, nil, os.ErrDeadlineExceeded
		case <-wake: // the deadline changed
		}
	}
}

// SetReadDeadline is how quic-go stops its reader on a connection it did
// not create.
func (c *rebindingConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
	return nil
}

func (c *rebindingConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.mu.Lock()
		for _, u := range c.all {
			u.Close()
		}
		c.mu.Unlock()
	})
	return nil
}

func (c *rebindingConn) WriteTo(b []byte, a net.Addr) (int, error) { return c.conn().WriteTo(b, a) }
func (c *rebindingConn) LocalAddr() net.Addr                       { return c.conn().LocalAddr() }

func (c *rebindingConn) SetDeadline(t time.Time) error    { return c.SetReadDeadline(t) }
func (c *rebindingConn) SetWriteDeadline(time.Time) error { return nil } // writes never block long
