package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// reqSpec is one request to make.
type reqSpec struct {
	scenario, name string
	method, path   string
	header         http.Header
	body           []byte    // nil: no request body
	bodyReader     io.Reader // instead of body: streamed, length not announced
	timeout        time.Duration
	trailer        http.Header // request trailers, sent after the body
}

// errInfo is an error as the test sees it: text, kind and, for HTTP/3 or
// QUIC errors, the code and which side raised it.
type errInfo struct {
	Error  string  `json:"error,omitempty"`
	Kind   string  `json:"error_kind,omitempty"` // h3, quic_application, quic_transport, idle_timeout, goaway, deadline, other
	Code   *uint64 `json:"error_code,omitempty"`
	Remote *bool   `json:"error_remote,omitempty"`
}

// result is one request's outcome, one JSON line.
type result struct {
	Scenario      string              `json:"scenario"`
	Name          string              `json:"name"`
	Method        string              `json:"method"`
	Path          string              `json:"path"`
	Status        int                 `json:"status"`
	Proto         string              `json:"proto,omitempty"`
	Informational []informational     `json:"informational,omitempty"`
	Headers       map[string][]string `json:"headers,omitempty"`
	ContentLength int64               `json:"content_length"` // -1: none announced
	BodyLen       int64               `json:"body_len"`
	BodySHA256    string              `json:"body_sha256,omitempty"`
	BodyText      *string             `json:"body_text,omitempty"`          // small UTF-8 bodies only
	Complete      bool                `json:"complete"`                     // body read to its end
	Announced     []string            `json:"trailers_announced,omitempty"` // by a trailer header
	Trailers      map[string][]string `json:"trailers,omitempty"`           // received
	SentLen       int                 `json:"sent_len,omitempty"`
	SentSHA256    string              `json:"sent_sha256,omitempty"`
	ErrorPhase    string              `json:"error_phase,omitempty"` // request (no response) or body
	errInfo
	Ms int64 `json:"ms"`
}

type informational struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers"`
}

func describeError(err error) errInfo {
	if err == nil {
		return errInfo{}
	}
	e := errInfo{Error: err.Error(), Kind: "other"}
	var h3err *http3.Error
	var terr *quic.TransportError
	var aerr *quic.ApplicationError
	var idle *quic.IdleTimeoutError
	var reset *quic.StatelessResetError
	switch {
	case errors.As(err, &h3err):
		code := uint64(h3err.ErrorCode)
		e.Kind, e.Code, e.Remote = "h3", &code, &h3err.Remote
	case errors.As(err, &aerr):
		code := uint64(aerr.ErrorCode)
		e.Kind, e.Code, e.Remote = "quic_application", &code, &aerr.Remote
	case errors.As(err, &terr):
		code := uint64(terr.ErrorCode)
		e.Kind, e.Code, e.Remote = "quic_transport", &code, &terr.Remote
	case errors.As(err, &idle):
		e.Kind = "idle_timeout"
	case errors.As(err, &reset):
		e.Kind = "stateless_reset"
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind = "deadline"
	case strings.Contains(err.Error(), "graceful shutdown"):
		// http3's errGoAway is unexported: a request refused locally because
		// the server's GOAWAY arrived.
		e.Kind = "goaway"
	}
	return e
}

// fillError adds an error description to a JSON map.
func fillError(m map[string]any, err error) {
	e := describeError(err)
	if e.Error == "" {
		return
	}
	m["error"], m["error_kind"] = e.Error, e.Kind
	if e.Code != nil {
		m["error_code"], m["error_remote"] = *e.Code, *e.Remote
	}
}

func lowerHeader(h http.Header) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	m := make(map[string][]string, len(h))
	for k, v := range h {
		m[strings.ToLower(k)] = v
	}
	return m
}

// receivedTrailers drops announced names that never got a value.
func receivedTrailers(h http.Header) map[string][]string {
	m := lowerHeader(h)
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// bodySink hashes a response body and keeps the start of it as text.
type bodySink struct {
	h    hash.Hash
	n    int64
	head bytes.Buffer
}

func newBodySink() *bodySink { return &bodySink{h: sha256.New()} }

func (s *bodySink) Write(p []byte) (int, error) {
	s.h.Write(p)
	s.n += int64(len(p))
	if room := maxBodyText + 1 - s.head.Len(); room > 0 {
		s.head.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (s *bodySink) fill(r *result) {
	r.BodyLen = s.n
	r.BodySHA256 = hex.EncodeToString(s.h.Sum(nil))
	if s.n <= maxBodyText && utf8.Valid(s.head.Bytes()) {
		t := s.head.String()
		r.BodyText = &t
	}
}

// exchange is a request whose response head has arrived (or failed).
type exchange struct {
	res    *result
	resp   *http.Response
	sink   *bodySink
	start  time.Time
	cancel context.CancelFunc
}

// send makes the request and waits for the response head.
func (c *client) send(spec reqSpec) *exchange {
	res := &result{Scenario: spec.scenario, Name: spec.name, Method: spec.method,
		Path: spec.path, ContentLength: -1}
	timeout := c.opt.reqTimeout
	if spec.timeout > 0 && spec.timeout < timeout {
		timeout = spec.timeout
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	x := &exchange{res: res, sink: newBodySink(), start: time.Now(), cancel: cancel}
	trace := &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			res.Informational = append(res.Informational,
				informational{Status: code, Headers: lowerHeader(http.Header(h))})
			return nil
		},
	}
	ctx = httptrace.WithClientTrace(ctx, trace)
	var body io.Reader
	if spec.body != nil {
		body = bytes.NewReader(spec.body)
		res.SentLen, res.SentSHA256 = len(spec.body), sha256Hex(spec.body)
	} else if spec.bodyReader != nil {
		body = spec.bodyReader
	}
	req, err := http.NewRequestWithContext(ctx, spec.method, c.base+spec.path, body)
	if err != nil {
		x.fail("request", err)
		return x
	}
	for k, v := range spec.header {
		req.Header[k] = v
	}
	if spec.trailer != nil {
		req.Trailer = spec.trailer
	}
	resp, err := c.cc.RoundTrip(req)
	if err != nil {
		x.fail("request", err)
		return x
	}
	x.resp = resp
	res.Status, res.Proto = resp.StatusCode, resp.Proto
	res.Headers = lowerHeader(resp.Header)
	res.ContentLength = resp.ContentLength
	// Go moves the trailer header's names into resp.Trailer, with no values
	// until trailers arrive.
	for k := range resp.Trailer {
		res.Announced = append(res.Announced, strings.ToLower(k))
	}
	sort.Strings(res.Announced)
	return x
}

func (x *exchange) fail(phase string, err error) {
	x.res.ErrorPhase = phase
	x.res.errInfo = describeError(err)
}

// readSome reads up to n body bytes (less at the end of the body).
func (x *exchange) readSome(n int64) error {
	if x.resp == nil {
		return errors.New("no response")
	}
	_, err := io.CopyN(x.sink, x.resp.Body, n)
	if err != nil && err != io.EOF {
		x.fail("body", err)
		return err
	}
	return nil
}

// abort cancels the request (quic-go resets the stream and stops reading
// with H3_REQUEST_CANCELLED) and returns the result so far.
func (x *exchange) abort() *result {
	x.cancel()
	return x.finish()
}

// finish reads the rest of the body and returns the result.
func (x *exchange) finish() *result {
	defer x.cancel()
	if x.resp != nil {
		defer x.resp.Body.Close()
		buf := make([]byte, 64<<10)
		if _, err := io.CopyBuffer(x.sink, x.resp.Body, buf); err != nil {
			x.fail("body", err)
		} else {
			x.res.Complete = true
			x.res.Trailers = receivedTrailers(x.resp.Trailer)
		}
		x.sink.fill(x.res)
	}
	x.res.Ms = time.Since(x.start).Milliseconds()
	return x.res
}

// do makes one request, reads it to the end and prints the result.
func (c *client) do(spec reqSpec) *result {
	r := c.send(spec).finish()
	c.out.emit(r)
	return r
}

// runRequestFlag runs one -req "METHOD PATH".
func (c *client) runRequestFlag(s string) {
	f := strings.Fields(s)
	if len(f) != 2 || !strings.HasPrefix(f[1], "/") {
		c.out.emit(map[string]any{"scenario": "req", "name": s,
			"error": fmt.Sprintf("bad -req %q: want \"METHOD /path\"", s), "error_kind": "usage"})
		return
	}
	c.do(reqSpec{scenario: "req", name: s, method: f[0], path: f[1]})
}
