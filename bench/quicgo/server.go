package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// runServer serves a directory with http.FileServer over quic-go's http3,
// quic-go's defaults except the pinned payload (PMTUD off, so it stays).
func runServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:4433", "UDP address to listen on")
	cert := fs.String("cert", "", "certificate (PEM)")
	key := fs.String("key", "", "private key (PEM)")
	root := fs.String("root", "", "directory to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cert == "" || *key == "" || *root == "" {
		return errors.New("server: -cert, -key and -root are required")
	}
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		return err
	}
	udpAddr, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		return err
	}
	conn, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return err
	}
	srv := &http3.Server{
		Handler:   http.FileServer(http.Dir(*root)),
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{pair}}),
		QUICConfig: &quic.Config{
			InitialPacketSize:       payload,
			DisablePathMTUDiscovery: true,
		},
	}
	fmt.Printf("quicgo-bench server listening on %s\n", conn.LocalAddr())
	return srv.Serve(conn)
}
