package main

// The same echo as h3q-server's /wt/echo, on webtransport-go's server, for
// bench/wt_bench.py to compare with: datagrams back, each unidirectional
// stream back on a server stream after its FIN, bidirectional streams on
// themselves.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"
)

const uniEchoMax = 16 << 20

func echoSession(s *webtransport.Session) {
	ctx := s.Context()
	go func() {
		for {
			d, err := s.ReceiveDatagram(ctx)
			if err != nil {
				return
			}
			_ = s.SendDatagram(d) // best effort, like the datagram itself
		}
	}()
	go func() {
		for {
			in, err := s.AcceptUniStream(ctx)
			if err != nil {
				return
			}
			go func() {
				data, err := io.ReadAll(io.LimitReader(in, uniEchoMax))
				if err != nil {
					return
				}
				out, err := s.OpenUniStreamSync(ctx)
				if err != nil {
					return
				}
				_, _ = out.Write(data)
				_ = out.Close()
			}()
		}
	}()
	for {
		str, err := s.AcceptStream(ctx)
		if err != nil {
			return
		}
		go func() {
			_, _ = io.Copy(str, str)
			_ = str.Close()
		}()
	}
}

func serve(addr, cert, key string, payload int) int {
	mux := http.NewServeMux()
	s := webtransport.Server{
		H3: &http3.Server{Addr: addr, Handler: mux,
			TLSConfig:  &tls.Config{NextProtos: []string{http3.NextProtoH3}},
			QUICConfig: quicConfig(payload)},
		CheckOrigin: func(r *http.Request) bool { return true },
	}
	webtransport.ConfigureHTTP3Server(s.H3)
	mux.HandleFunc("/wt/echo", func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.Upgrade(w, r)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		echoSession(sess)
	})
	fmt.Printf("wtgo listening on %s\n", addr)
	if err := s.ListenAndServeTLS(cert, key); err != nil &&
		err != context.Canceled && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "wtgo serve:", err)
		return exitFailed
	}
	return exitOK
}

// quicConfig: datagrams on; with payload > 0, UDP payloads pinned to it
// (no path MTU discovery), as the benchmark pins every party.
func quicConfig(payload int) *quic.Config {
	c := &quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true}
	if payload > 0 {
		c.InitialPacketSize = uint16(payload)
		c.DisablePathMTUDiscovery = true
	}
	return c
}
