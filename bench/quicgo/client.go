package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// target is the server every connection of a run goes to.
type target struct {
	raddr *net.UDPAddr
	url   string
}

func parseTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" || u.Port() == "" {
		return nil, fmt.Errorf("-url %q: want https://127.0.0.1:PORT/path", raw)
	}
	raddr, err := net.ResolveUDPAddr("udp", u.Host)
	if err != nil {
		return nil, err
	}
	// Load goes to this machine only.
	if !raddr.IP.IsLoopback() {
		return nil, fmt.Errorf("-url %q is not a loopback address", raw)
	}
	return &target{raddr: raddr, url: raw}, nil
}

// newTransport binds a UDP socket on loopback (quic.DialAddr would bind
// 0.0.0.0) for one or more connections.
func newTransport(t *target) (*quic.Transport, error) {
	laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if t.raddr.IP.To4() == nil {
		laddr = &net.UDPAddr{IP: net.IPv6loopback}
	}
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	return &quic.Transport{Conn: udp}, nil
}

// conn is one HTTP/3 connection.
type conn struct {
	qc *quic.Conn
	cc *http3.ClientConn
}

func dial(ctx context.Context, tr *quic.Transport, t *target, keepAlive time.Duration) (*conn, error) {
	tlsConf := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the benchmark's certificate is self-signed
		NextProtos:         []string{http3.NextProtoH3},
		ServerName:         "localhost",
	}
	quicConf := &quic.Config{
		InitialPacketSize:       payload,
		DisablePathMTUDiscovery: true,
		HandshakeIdleTimeout:    10 * time.Second,
		MaxIdleTimeout:          120 * time.Second,
		KeepAlivePeriod:         keepAlive,
		MaxIncomingStreams:      -1, // an HTTP/3 server opens no bidi streams
	}
	qc, err := tr.Dial(ctx, t.raddr, tlsConf, quicConf)
	if err != nil {
		return nil, err
	}
	h3 := &http3.Transport{DisableCompression: true}
	return &conn{qc: qc, cc: h3.NewClientConn(qc)}, nil
}

func (c *conn) close() {
	_ = c.qc.CloseWithError(0x100, "") // H3_NO_ERROR
}
