package main

import (
	"bufio"
	"os"
	"time"
)

// scenarioReset serves the stateless-reset test: one request, then
// {"event":"ready"}; the test kills and restarts the server and writes a
// line to stdin. The client then sends a request, whose packets reach a
// server that does not know the connection, and reports how the connection
// ended and how long after that request it did
// ({"event":"ended","ms":...,"conn":{...}}).
func scenarioReset(c *client) {
	const s = "reset"
	c.do(get(s, "before", "/hello"))
	c.out.emit(map[string]any{"event": "ready"})
	line := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		close(line)
	}()
	select {
	case <-line:
	case <-c.ctx.Done():
		return
	}
	start := time.Now()
	c.do(get(s, "after", "/hello"))
	select {
	case <-c.qc.Context().Done():
	case <-c.ctx.Done():
	}
	c.out.emit(map[string]any{"event": "ended", "ms": time.Since(start).Milliseconds(),
		"conn": connClose(c.qc)})
}
