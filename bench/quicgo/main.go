// quicgo-bench: quic-go v0.65.0 on both ends of the benchmark (bench/ only).
//
//	quicgo-bench server -addr 127.0.0.1:4433 -cert cert.pem -key key.pem -root DIR
//	quicgo-bench load   -url https://127.0.0.1:4433/1k -c 20 -s 10 -D 5 [-n N] [-json]
//	quicgo-bench idle   -url https://127.0.0.1:4433/1k -c 10000
//
// server: quic-go's http3.Server with net/http's FileServer, defaults
// except the pinned UDP payload. load: a load generator that prints the
// same JSON as h3q-bench, so bench.py reads both alike. idle: opens
// connections that each complete one GET and then stay open (kept alive
// by PINGs) until stdin closes, for the memory-per-connection measurement.
package main

import (
	"fmt"
	"os"
)

// payload is the UDP payload every party of the benchmark is pinned to:
// loopback's 64 KB MTU would otherwise let stacks pick different sizes.
const payload = 1350

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = runServer(os.Args[2:])
	case "load":
		err = runLoad(os.Args[2:])
	case "idle":
		err = runIdle(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "quicgo-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: quicgo-bench server|load|idle [flags] (-h for flags)")
	os.Exit(2)
}
