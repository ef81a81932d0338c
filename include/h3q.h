/*
 * h3q: an embeddable HTTP/3 server library over QUIC (backed by quiche).
 *
 * Threading: a server runs one event loop thread per worker
 * (h3q_config.workers, default 1). With one worker that is the thread that
 * calls h3q_server_run or, when another program's loop drives the server,
 * the thread that calls h3q_server_start and h3q_server_process. Every
 * function below must be called on that thread, or before the server
 * starts, except where a function says otherwise (h3q_server_stop,
 * h3q_server_post, ...). With several workers, "the loop thread" of a
 * request, its response, its connection and their callbacks is the thread
 * of the worker that owns the connection (see "Workers" below
 * h3q_server_run).
 *
 * Errors: functions returning int return 0 (H3Q_OK) on success or a negative
 * H3Q_E* code. Functions returning ssize_t return a byte count or a negative
 * H3Q_E* code. h3q_strerror() describes any code.
 *
 * Ownership: strings and buffers passed in are copied unless a function says
 * otherwise. Pointers handed out (request fields, header values) are owned by
 * the library and live as long as the object they came from.
 */
#ifndef H3Q_H
#define H3Q_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(H3Q_BUILDING) && defined(__GNUC__)
#define H3Q_EXTERN __attribute__((visibility("default")))
#else
#define H3Q_EXTERN
#endif

#define H3Q_VERSION_MAJOR 0
#define H3Q_VERSION_MINOR 1
#define H3Q_VERSION_PATCH 0

/* ---------------------------------------------------------------- errors */

typedef enum h3q_error {
  H3Q_OK = 0,
  H3Q_EINVAL = -1,       /* an argument is invalid */
  H3Q_ENOMEM = -2,       /* out of memory */
  H3Q_EAGAIN = -3,       /* no room or no data now; wait for a notification */
  H3Q_ESTATE = -4,       /* not allowed in the object's current state */
  H3Q_ECLOSED = -5,      /* the stream or connection is closed or was reset */
  H3Q_EIO = -6,          /* a socket or file operation failed (see errno) */
  H3Q_ECONFIG = -7,      /* the configuration is invalid (message names it) */
  H3Q_ETLS = -8,         /* certificate or key could not be loaded */
  H3Q_EQUIC = -9,        /* quiche reported a transport or HTTP/3 error */
  H3Q_EEXIST = -10,      /* the route is already registered */
  H3Q_ETOOLARGE = -11,   /* a size limit was exceeded */
  H3Q_ENOTFOUND = -12,   /* nothing matched (maps to 404) */
  H3Q_EFORBIDDEN = -13,  /* access denied (maps to 403) */
  H3Q_EBADREQUEST = -14, /* the request is malformed (maps to 400) */
  H3Q_EINTERNAL = -15,   /* a handler failed (maps to 500) */
} h3q_error;

/* HTTP/3 and QPACK error codes (RFC 9114 section 8.1, RFC 9204 section 6),
 * as used in stream resets, STOP_SENDING and CONNECTION_CLOSE, and as
 * reported by h3q_response_peer_error and accepted by h3q_response_reset. */
#define H3Q_H3_NO_ERROR 0x100
#define H3Q_H3_GENERAL_PROTOCOL_ERROR 0x101
#define H3Q_H3_INTERNAL_ERROR 0x102
#define H3Q_H3_STREAM_CREATION_ERROR 0x103
#define H3Q_H3_CLOSED_CRITICAL_STREAM 0x104
#define H3Q_H3_FRAME_UNEXPECTED 0x105
#define H3Q_H3_FRAME_ERROR 0x106
#define H3Q_H3_EXCESSIVE_LOAD 0x107
#define H3Q_H3_ID_ERROR 0x108
#define H3Q_H3_SETTINGS_ERROR 0x109
#define H3Q_H3_MISSING_SETTINGS 0x10a
#define H3Q_H3_REQUEST_REJECTED 0x10b
#define H3Q_H3_REQUEST_CANCELLED 0x10c
#define H3Q_H3_REQUEST_INCOMPLETE 0x10d
#define H3Q_H3_MESSAGE_ERROR 0x10e
#define H3Q_H3_CONNECT_ERROR 0x10f
#define H3Q_H3_VERSION_FALLBACK 0x110
#define H3Q_QPACK_DECOMPRESSION_FAILED 0x200
#define H3Q_QPACK_ENCODER_STREAM_ERROR 0x201
#define H3Q_QPACK_DECODER_STREAM_ERROR 0x202
#define H3Q_H3_DATAGRAM_ERROR 0x33 /* RFC 9297 */
/* WebTransport over HTTP/3 (draft-ietf-webtrans-http3): streams of a
 * session that ended, and peer streams h3q refused (unknown session, or
 * over wt_max_streams_per_session). */
#define H3Q_WT_SESSION_GONE 0x170d7b68
#define H3Q_WT_BUFFERED_STREAM_REJECTED 0x3994bd84

/* Returns a static, human readable description of an H3Q_E* code (or of 0).
 * Never returns NULL; unknown codes give "unknown error". */
H3Q_EXTERN const char *h3q_strerror(int err);

/* Maps an H3Q_E* code to the HTTP status a client should get for it:
 * ENOTFOUND 404, EFORBIDDEN 403, EBADREQUEST/EINVAL 400, ETOOLARGE 413,
 * EAGAIN 503, anything else 500. 0 maps to 200. */
H3Q_EXTERN int h3q_error_to_status(int err);

/* Returns the library version as "MAJOR.MINOR.PATCH (quiche X.Y.Z)". Static. */
H3Q_EXTERN const char *h3q_version(void);

/* --------------------------------------------------------------- logging */

typedef enum h3q_log_level {
  H3Q_LOG_ERROR = 0,
  H3Q_LOG_WARN = 1,
  H3Q_LOG_INFO = 2,
  H3Q_LOG_DEBUG = 3,
  H3Q_LOG_TRACE = 4,
} h3q_log_level;

/* Sets the process-wide log level. Messages above it are dropped; messages
 * above the compile-time floor (H3Q_LOG_FLOOR, default DEBUG) are never
 * compiled in. The environment variable H3Q_LOG_LEVEL (error, warn, info,
 * debug, trace), read at server creation, overrides the configured level. */
H3Q_EXTERN void h3q_log_set_level(h3q_log_level level);

/* Receives each log line instead of stderr: level, the message (without
 * time, program name, level or newline; NUL-terminated, valid only during
 * the call) and user. Called on the thread that logs (the loop thread,
 * mostly; the h3q_host thread for hosted servers), with no h3q lock held,
 * so cb must be thread-safe; it must not block for long and must not call
 * h3q_log_set_callback. cb NULL restores stderr. Process-wide; best set
 * before servers start (a line logged while it changes may still reach the
 * old callback). */
typedef void (*h3q_log_cb)(h3q_log_level level, const char *message,
                           void *user);
H3Q_EXTERN void h3q_log_set_callback(h3q_log_cb cb, void *user);

/* How lines written to stderr look (h3q_config.log_format):
 * H3Q_LOG_TEXT "12:00:00.000 h3q warn  message", or H3Q_LOG_JSON one
 * object per line: {"ts":"2026-11-28T12:00:00.000Z","level":"warn",
 * "program":"h3q","msg":"..."}. The access log (access_log_path) uses the
 * same format. */
typedef enum h3q_log_format {
  H3Q_LOG_TEXT = 0,
  H3Q_LOG_JSON = 1,
} h3q_log_format;

/* ---------------------------------------------------------------- config */

/* The event loop implementation behind a server (h3q_config.loop_backend).
 * Both run h3q_server_run; only H3Q_LOOP_EPOLL can also be driven by
 * another program's event loop (h3q_server_start, "Embedding" below). */
typedef enum h3q_loop_backend {
  H3Q_LOOP_LIBEV = 0, /* libev (default) */
  H3Q_LOOP_EPOLL = 1, /* Linux epoll + timerfd + eventfd; embeddable */
} h3q_loop_backend;

/* The most event loops (h3q_config.workers) one server runs: the
 * identity byte in every connection ID holds the worker in 5 bits (see
 * h3q_config.steering). */
#define H3Q_WORKERS_MAX 32

/* How a datagram reaches the server socket that owns its connection when
 * several sockets share the port (SO_REUSEPORT: a new server process next
 * to one that drains, or workers). Every connection ID the server issues
 * carries its owner's identity byte; see h3q_config.steering. */
typedef enum h3q_steering {
  H3Q_STEERING_AUTO = 0,    /* eBPF when the kernel allows it, else handoff */
  H3Q_STEERING_EBPF = 1,    /* eBPF required: h3q_server_new fails without */
  H3Q_STEERING_HANDOFF = 2, /* no eBPF: the kernel's hash, then handoff */
} h3q_steering;

/* Server configuration. Fill with h3q_config_init(), then change fields.
 * String fields are borrowed until h3q_server_new() returns (it copies them).
 * Limits are validated by h3q_server_new(); the error message names the
 * field. A 0 in a limit field is invalid unless the field says otherwise. */
typedef struct h3q_config {
  /* Network and TLS. */
  const char *bind_addr; /* IPv4 or IPv6 literal; default "0.0.0.0" ("::" is
                            dual-stack) */
  uint32_t port;         /* 0..65535 (0: any free port, see
                            h3q_server_port); default 4433 */
  const char *cert_path; /* PEM certificate chain; required */
  const char *key_path;  /* PEM private key; required */

  /* QUIC transport (defaults mirror the spec's ServerConfig). */
  uint64_t idle_timeout_ms;                     /* 30000 */
  uint64_t initial_max_data;                    /* 2 MiB */
  uint64_t initial_max_stream_data_bidi_local;  /* 1 MiB */
  uint64_t initial_max_stream_data_bidi_remote; /* 1 MiB */
  uint64_t initial_max_stream_data_uni;         /* 1 MiB */
  uint64_t initial_max_streams_bidi;            /* 100 */
  uint64_t initial_max_streams_uni;             /* 10 (>= 3 for HTTP/3) */
  size_t max_recv_udp_payload_size;             /* 1350; 1200..65527 */
  size_t max_send_udp_payload_size;             /* 1350; 1200..65527 */
  bool disable_active_migration;                /* true */
  /* Path MTU discovery (RFC 8899, quiche's DPLPMTUD): packets start at
   * 1200 bytes and grow by probing up to max_send_udp_payload_size, so a
   * path that silently drops large datagrams (a PMTU blackhole) still
   * carries the connection. false: every packet is sent at the full
   * size the peer allows. Off by default for now: it has not yet run
   * under the whole test suite for long (the blackhole tests turn it on). */
  bool enable_pmtud; /* false */
  /* true: quiche's pacer stamps each packet with a release time and h3q
   * holds a connection's packets until at most 1 ms before that time (a
   * timer, no busy waiting; what is due within 1 ms leaves together, in
   * GSO runs). false: quiche's pacer is off and h3q sends whatever the
   * congestion window allows at once. quiche 0.30 paces only with
   * cc_algorithm "bbr2": with "cubic" and "reno" every release time is
   * "now", so the flag changes nothing for them. */
  bool enable_pacing;       /* true */
  const char *cc_algorithm; /* "cubic" (also "reno", "bbr2") */
  bool grease;              /* true */
  /* Comma-separated ALPN list; default "h3". h3q speaks HTTP/3 only, so
   * every entry must be "h3" (h3q_server_new refuses others). */
  const char *alpn;

  /* HTTP/3 (RFC 9114, RFC 9204). The QPACK dynamic table the peer may use
   * for request headers (0 disables it), and how many request streams may
   * wait for its inserts at once. Memory per connection grows with the
   * capacity. */
  uint64_t qpack_max_table_capacity; /* 4096; at most 1 MiB */
  uint64_t qpack_blocked_streams;    /* 16; at most 1000 */

  /* Server-wide limits. */
  /* 10000; Initials beyond are dropped. Server-wide: the workers share one
   * counter of open connections. */
  size_t max_connections;
  size_t recv_batch; /* datagrams read per wakeup, 1..1024; 32 */
  /* Requests in progress per connection beyond this get 503 (0 = only
   * QUIC's stream limit, initial_max_streams_bidi, applies). */
  size_t max_active_requests_per_conn;
  /* Rapid reset (the CVE-2023-44487 pattern): a connection whose peer
   * resets more request streams than this within one second is closed
   * with H3_EXCESSIVE_LOAD. QUIC's stream limit alone does not bound the
   * rate, since a reset stream returns its credit at once. 0 = no limit. */
  size_t max_request_resets_per_sec; /* 200 */

  /* Request limits. Header count, name, value and section size give 431,
   * the path (without query) 414; a body over max_request_body_size gives
   * 413 (declared or streamed; the rest is refused with STOP_SENDING), or
   * a reset once the response started. */
  size_t max_header_count;         /* 100 */
  size_t max_header_name_length;   /* 256 */
  size_t max_header_value_length;  /* 8192 */
  size_t max_request_headers_size; /* 16384 */
  size_t max_path_length;          /* 2048 */
  uint64_t max_request_body_size;  /* 100 MiB */

  /* Slow requests: the header section must arrive within
   * request_header_timeout_ms of the stream opening, and the body may not
   * sit idle longer than body_idle_timeout_ms; otherwise the request gets
   * 408 (or a reset once the response started). 0 disables either. */
  uint64_t request_header_timeout_ms; /* 10000 */
  uint64_t body_idle_timeout_ms;      /* 30000 */

  /* Graceful shutdown: after h3q_server_stop() (or a per-connection
   * GOAWAY) in-flight requests get this long to finish. */
  uint64_t drain_timeout_ms; /* 5000 */

  /* 0-RTT. With enable_early_data, requests that arrive as early data
   * with an unsafe method get 425 Too Early. ticket_key (48 bytes, or NULL
   * for a random per-process key) lets several processes resume each
   * other's sessions (without it the ticket key derives from the server
   * secret, see below). */
  bool enable_early_data; /* false */
  const uint8_t *ticket_key;
  size_t ticket_key_len;

  /* Extended CONNECT (RFC 9220), needed by WebTransport. Without it a
   * CONNECT with :protocol is malformed. */
  bool enable_extended_connect; /* false */

  /* QUIC DATAGRAM (RFC 9221). enable_dgram announces the
   * max_datagram_frame_size transport parameter and lets the peer send
   * datagrams; they reach h3q_server_on_datagram's callback (or, with
   * HTTP Datagrams, the request they belong to). Each direction has a
   * queue of at most this many datagrams: when one is full, the oldest
   * datagram in it is dropped and counted (h3q_server_stats), so a send
   * that returns H3Q_OK has always queued its datagram. A datagram
   * payload larger than dgram_max_payload_size is dropped on receipt
   * (counted) and refused on send. */
  bool enable_dgram;             /* false */
  size_t dgram_recv_queue_len;   /* 256; 1..65536 */
  size_t dgram_send_queue_len;   /* 256; 1..65536 */
  size_t dgram_max_payload_size; /* 65527; 16..65527 */
  /* HTTP Datagrams (RFC 9297; needs enable_dgram): announces H3_DATAGRAM
   * in SETTINGS, and every QUIC DATAGRAM then carries a quarter stream id
   * naming the request it belongs to (h3q_request_on_datagram,
   * h3q_server_route_datagram). Datagrams for unknown or closed streams,
   * or for requests without a receiver, are dropped and counted; an id of
   * 2^60 or more closes the connection with H3_DATAGRAM_ERROR. */
  bool enable_h3_datagram; /* false */

  /* WebTransport over HTTP/3 (draft-ietf-webtrans-http3; see
   * h3q_server_webtransport). Turns on enable_extended_connect,
   * enable_dgram and enable_h3_datagram too, and announces WebTransport in
   * SETTINGS for the current drafts (WT_MAX_SESSIONS, 0xc671706a) and
   * draft-02 (ENABLE_WEBTRANSPORT, 0x2b603742 = 1). Sessions beyond
   * wt_max_sessions_per_conn on one connection get 429; streams the peer
   * opens beyond wt_max_streams_per_session open streams of a session are
   * refused with H3Q_WT_BUFFERED_STREAM_REJECTED, and h3q_wt_session_open
   * returns H3Q_ETOOLARGE there. Datagram queues and sizes are the
   * dgram_* fields above. */
  bool enable_webtransport;          /* false */
  size_t wt_max_sessions_per_conn;   /* 16; 1..65535 */
  size_t wt_max_streams_per_session; /* 256; 1..1000000 */

  /* Address validation (RFC 9000 §8.1). With enable_retry every new
   * connection is first answered with a Retry carrying a token (sealed
   * with a key from the server secret, bound to the client's address and
   * port and its original DCID, valid 10 s); only an Initial bearing such
   * a token creates a connection, so a flood of spoofed Initials costs no
   * per-connection state. An Initial with an invalid or expired token is
   * dropped (RFC 9000 §8.1.2 allows this instead of an INVALID_TOKEN
   * close). A client that returns with a token from a NEW_TOKEN frame
   * (see new_token_lifetime) gets no Retry. */
  bool enable_retry; /* false */
  /* Address validation under load: without enable_retry, a new connection
   * still gets a Retry first while this many handshakes from unvalidated
   * addresses are in progress (connections accepted without a Retry
   * token whose handshake has not completed; until half of them have
   * completed or timed out), and while the socket's receive queue holds a
   * backlog of datagrams not read yet. An Initial flood then costs the
   * server one stateless Retry per Initial instead of a connection, and
   * normal clients one round trip; without load nothing changes. A
   * client that got such a Retry is served when it returns with the token
   * even after the load is over; a token that does not verify is dropped
   * while Retry is on and ignored otherwise. With a backlog (with
   * enable_retry too) Retries are rationed to a quarter of each read
   * batch and the other new Initials are dropped before any crypto
   * (H3Q_DROP_OVERLOAD), so that the queue drains and packets of
   * established connections are not lost with the flood's. The start of
   * a period under load is logged (WARN); h3q_server_stats counts the
   * handshakes and the Retries sent because of load. 0 = never (only
   * enable_retry); at most 1000000. */
  size_t retry_auto_threshold; /* 128 */
  /* NEW_TOKEN (RFC 9000 §8.1.3): once its handshake is confirmed, every
   * connection gets one token in a NEW_TOKEN frame, sealed like a Retry
   * token but bound to the client's IP address only (not its port) and
   * good for this many seconds. A later connection from that address
   * whose Initial carries it counts as address-validated: no Retry, with
   * enable_retry or under load, and no amplification limit of h3q's own.
   * A NEW_TOKEN token that does not verify (forged, expired, another
   * address or secret) is ignored, never refused: the client gets a Retry
   * when one is in force and is served otherwise. Servers sharing the
   * secret accept each other's tokens. 0 = none sent or accepted; at
   * most 2592000 (30 days). */
  uint64_t new_token_lifetime; /* 86400 */

  /* The server secret: at least 32 bytes (secret/secret_len; copied), or
   * a file holding them (secret_file, read at h3q_server_new; at most
   * 4096 bytes). Retry-token keys, stateless-reset tokens, connection IDs
   * and the TLS session-ticket key (unless ticket_key is set) derive from
   * it, so servers that share it (restarts, workers, machines) accept each
   * other's tokens and tickets, and a restarted server ends the old
   * server's connections at once with a stateless reset. Without either,
   * the keys are random for each server object. */
  const uint8_t *secret;
  size_t secret_len;
  const char *secret_file;

  /* Client certificates. With client_ca_path (PEM CA certificates) the
   * server asks clients for a certificate and refuses the handshake when
   * one does not verify against those CAs; a client may still send none
   * unless client_cert_required (then the connection closes with TLS
   * alert certificate_required). h3q_request_client_cert_verified tells a
   * handler which case it serves. */
  const char *client_ca_path;
  bool client_cert_required; /* false; needs client_ca_path */

  /* Diagnostics. */
  const char *qlog_dir; /* NULL = no qlog; else one file per connection */
  /* NULL = no TLS key log; else the NSS key log format (SSLKEYLOGFILE),
   * appended to, for decrypting captures. Keep it secret. */
  const char *keylog_path;
  /* WARN. At TRACE (set here or by H3Q_LOG_LEVEL at server creation)
   * quiche's own debug log is routed through h3q's log too, at TRACE;
   * quiche allows that once per process. */
  h3q_log_level log_level;
  h3q_log_format log_format; /* H3Q_LOG_TEXT ("text"; or "json") */
  /* Access log: one line per request when its response completes or is
   * reset: time, method, path, status (0: none was sent), body bytes
   * sent, duration, connection number and stream id; in log_format.
   * NULL = none; "-" = stdout; else a file, appended to. */
  const char *access_log_path;
  /* Prometheus metrics (text exposition format 0.0.4) over HTTP/1.1 on a
   * TCP listener served by the server's own event loop: GET /metrics
   * (404 for other paths). "ADDR:PORT" ("[::1]:9100" for IPv6); port 0
   * picks a free port (h3q_server_metrics_port). NULL = off. */
  const char *metrics_addr;

  /* UDP socket buffers (SO_RCVBUF, SO_SNDBUF) in bytes; the kernel caps
   * them (net.core.rmem_max / wmem_max) unless the process may pass the
   * cap, and the effective sizes are logged at debug level. 0 keeps
   * h3q's default of 8 MiB; else 2048..1 GiB. */
  size_t recv_buffer_size; /* 0 */
  size_t send_buffer_size; /* 0 */
  /* Downloads in progress per connection: GET (and HEAD) requests whose
   * response has not finished. One more gets 503 without its handler
   * being called (and a warning in the log); 0 = no limit. */
  size_t max_active_downloads_per_conn; /* 0 */

  /* Event loop. H3Q_LOOP_EPOLL is needed for h3q_server_start. */
  h3q_loop_backend loop_backend; /* H3Q_LOOP_LIBEV ("libev"; or "epoll") */
  /* true: receive and send one datagram per system call (recvmsg,
   * sendmsg) instead of batches (recvmmsg, sendmmsg). h3q switches to
   * this by itself when the kernel lacks the batch calls (ENOSYS), and
   * the environment variable H3Q_UDP_NO_MMSG=1 forces it. */
  bool udp_single_syscalls; /* false */

  /* Scale-out: servers (processes) bound to the same port share it
   * (SO_REUSEPORT), and each claims a generation 0..7 for the port at
   * h3q_server_new (the lowest free one; H3Q_EIO when all 8 are taken).
   * Every connection ID it issues carries (generation << 5 | worker) in
   * its first nonce byte (the second byte, or after the QUIC-LB server
   * id, see quic_lb_server_id below). The kernel delivers a datagram to one of
   * the sockets by its 4-tuple hash, unless a steering program (eBPF,
   * SO_ATTACH_REUSEPORT_EBPF, needs CAP_BPF) sends it to the socket its
   * connection ID names. A datagram that still lands on a server that does
   * not have its connection is handed over a local socket (abstract unix
   * socket "h3q/PORT/GEN/WORKER", same user only) to the server its
   * connection ID names, which answers from its own socket; when no such
   * server exists, the old rules apply (stateless reset). While a server
   * drains (h3q_server_stop), new connections that reach it are handed to
   * a server of the port that does not drain, or dropped when there is
   * none (the client retries). H3Q_STEERING_AUTO ("auto") loads the eBPF
   * program when the kernel allows and logs once (info) when it does not;
   * H3Q_STEERING_EBPF ("ebpf") makes h3q_server_new fail with H3Q_EIO
   * instead; H3Q_STEERING_HANDOFF ("handoff") never loads it. The
   * program is shared by the processes of the port (the map of sockets is
   * passed from a running one), so the newest one attached steers for all. */
  h3q_steering steering; /* H3Q_STEERING_AUTO */

  /* QUIC-LB (draft-ietf-quic-load-balancers, the plaintext algorithm):
   * with quic_lb_server_id set, every connection ID the server issues is
   * one octet (the config rotation quic_lb_config_id in its top 3 bits,
   * the CID length - 1 in the other 5), the server id, then
   * quic_lb_nonce_len bytes that differ per CID. A load balancer
   * configured with the same config id, server id length and nonce length
   * reads the server id after the first octet and routes every packet of a
   * connection to this server, after NAT rebinding or migration too. The
   * first nonce byte identifies the worker or process inside the server;
   * the rest is random, or for the first CID an HMAC of the client's
   * DCID. Give every server of the fleet the same secret (see above), so
   * that Retry tokens, stateless resets and session tickets of one are
   * valid at the others. quic_lb_config_id: 0..6 with a server id; 7, the
   * draft's unroutable codepoint, without (then CIDs are 16 bytes: 0b111,
   * the length, random bytes). quic_lb_server_id: 1..15 bytes as hex
   * digits ("0a1b"; copied at h3q_server_new), NULL for none.
   * quic_lb_nonce_len: 4..18, and server id + nonce at most 19 bytes (a
   * CID is at most 20). */
  uint32_t quic_lb_config_id;    /* 7: no QUIC-LB */
  const char *quic_lb_server_id; /* NULL */
  size_t quic_lb_nonce_len;      /* 8 */
  /* Event loops, each on its own thread with its own UDP socket bound to
   * the same address and port (SO_REUSEPORT: the kernel spreads clients
   * over the sockets by their address and port; datagrams of a
   * connection are steered to its worker, see steering). 1..32 (the
   * identity byte of the CIDs holds the worker in 5 bits); 1 (the
   * default) runs everything on the thread that calls h3q_server_run,
   * exactly as before. h3q_config_set(cfg, "workers", "auto") stores the
   * number of online CPUs (at most 32). With more than one worker,
   * handlers run on several threads at once (see "Workers" below
   * h3q_server_run); the embedding API and the host API need workers = 1. */
  uint32_t workers; /* 1 */

  /* Owned by h3q_config_set (its copies); h3q_config_init sets it to NULL.
   * Do not touch. */
  void *internal;
} h3q_config;

/* Fills cfg with the documented defaults. cert_path and key_path are NULL and
 * must be set. Does nothing if cfg is NULL. */
H3Q_EXTERN void h3q_config_init(h3q_config *cfg);

/* Configuration without the struct layout, for bindings (Bun's FFI) and
 * command lines. h3q_config_new returns a heap config with the defaults
 * (NULL when out of memory); free it with h3q_config_free (accepts NULL).
 *
 * h3q_config_set sets the field called name (exactly as in the struct,
 * e.g. "idle_timeout_ms") from its text form: decimal numbers for integer
 * fields (range-checked against the field's type; the server checks the
 * documented ranges), true/false/1/0/yes/no/on/off for booleans,
 * error..trace for log_level, libev or epoll for loop_backend, text or
 * json for log_format, a number or "auto" for workers, auto, ebpf or
 * handoff for steering, 96 hex
 * digits for ticket_key (also sets ticket_key_len), and any text for
 * strings. Values are copied: the
 * config owns them until h3q_config_free, or h3q_config_release for a
 * config that lives elsewhere (e.g. on the stack after h3q_config_init).
 * Errors: H3Q_EINVAL (NULL argument or no field of that name),
 * H3Q_ECONFIG (the value does not parse for that field), H3Q_ENOMEM. */
H3Q_EXTERN h3q_config *h3q_config_new(void);
H3Q_EXTERN int h3q_config_set(h3q_config *cfg, const char *name,
                              const char *value);
H3Q_EXTERN void h3q_config_free(h3q_config *cfg);

/* Frees the copies h3q_config_set made in cfg (not cfg itself); string
 * fields set through it become dangling and must not be used. Accepts
 * NULL. */
H3Q_EXTERN void h3q_config_release(h3q_config *cfg);

/* ---------------------------------------------------------------- server */

typedef struct h3q_server h3q_server;
typedef struct h3q_request h3q_request;
typedef struct h3q_response h3q_response;

/* HTTP Datagrams (RFC 9297; enable_h3_datagram). Receives one datagram
 * that belongs to req's stream; data is valid only during the call. */
typedef void (*h3q_request_datagram_cb)(h3q_request *req, const uint8_t *data,
                                        size_t len, void *user);

/* Creates a server from cfg: validates every field, loads the certificate
 * and key, binds the UDP socket. On failure returns a negative code, leaves
 * *out NULL and, when err is not NULL, writes a NUL-terminated message naming
 * the bad field (at most errlen bytes). Errors: H3Q_EINVAL (NULL cfg/out),
 * H3Q_ECONFIG (a field is out of range), H3Q_ETLS (cert/key unreadable or
 * invalid), H3Q_EIO (socket/bind failed), H3Q_ENOMEM.
 * The caller owns *out and frees it with h3q_server_free(). */
H3Q_EXTERN int h3q_server_new(const h3q_config *cfg, h3q_server **out,
                              char *err, size_t errlen);

/* Closes every connection immediately and frees the server. Accepts NULL.
 * Must not be called while h3q_server_run() is running, nor from inside
 * h3q_server_process(). */
H3Q_EXTERN void h3q_server_free(h3q_server *srv);

/* Returns the UDP port the server's socket is bound to. */
H3Q_EXTERN uint16_t h3q_server_port(const h3q_server *srv);

/* Runs the event loop on the calling thread until h3q_server_stop() is
 * called, then closes all connections (CONNECTION_CLOSE with H3_NO_ERROR)
 * and the UDP socket (each worker's as soon as its own loop ends, so other
 * servers of the port get its datagrams) and returns 0. With workers > 1 it
 * first starts workers - 1 threads (they block every signal, so signals reach
 * the threads they reached before), runs worker 0 on the calling thread, and
 * returns once every worker has drained and its thread has been joined. Returns
 * H3Q_ESTATE if already running (also when started with h3q_server_start),
 * H3Q_EIO if an event loop fails or a thread cannot be started (the other
 * workers are stopped then). */
H3Q_EXTERN int h3q_server_run(h3q_server *srv);

/* Workers (h3q_config.workers = N > 1): N event loops on N threads of one
 * process, each with its own UDP socket bound to the same address and port
 * with SO_REUSEPORT (the kernel picks the socket for a client by its
 * address and port), its own connections, timers, buffers and counters.
 * Shared, and read-only once the server runs: the configuration, routes,
 * handlers, the fallback and everything registered with their user
 * pointers. Consequences:
 *   - Handlers and callbacks run on several threads at once: they must be
 *     thread-safe (shared state behind a lock or atomics). h3q_static is
 *     safe to share.
 *   - A request, its response and its connection belong to one worker:
 *     call their functions on that worker's thread only (inside their
 *     callbacks, or in a function posted with h3q_server_post_worker to
 *     h3q_request_worker(req)). h3q_server_post runs on worker 0.
 *   - Connection numbers (h3q_request_connection_id) are unique across
 *     workers; connection number % N is the worker that owns it.
 *   - h3q_server_stop, h3q_server_reload_tls and h3q_server_get_stats act
 *     on every worker; max_connections counts connections of all workers;
 *     /metrics (served on worker 0's loop) reports the sums and, per
 *     worker, h3q_worker_connections_accepted_total{worker="i"} and
 *     h3q_worker_requests_total{worker="i"}.
 *   - The embedding API (h3q_server_start, h3q_server_fd) and the host API
 *     (h3q_host_new) need workers = 1 (H3Q_ECONFIG otherwise). */

/* Asks a running server to stop gracefully (GOAWAY; requests already
 * received finish within drain_timeout_ms). Every worker drains its own
 * connections; h3q_server_run returns when all of them are done. Safe to
 * call from any thread and from a signal handler; returns immediately. A call
 * before run() makes run() return at once. An embedded server stops through
 * h3q_server_process, which returns H3Q_SERVER_STOPPED when done. */
H3Q_EXTERN void h3q_server_stop(h3q_server *srv);

/* Asks the server to read cert_path and key_path (and client_ca_path)
 * again: connections accepted afterwards use the new certificate, open
 * connections and their transfers go on with the old one. Safe to call
 * from any thread and from a signal handler (h3q-server calls it on
 * SIGHUP); returns immediately and the reload happens on the loop thread
 * (on every worker's, each for its own new connections).
 * If the new files do not load, the server logs an error naming the field
 * and keeps serving the old certificate. */
H3Q_EXTERN void h3q_server_reload_tls(h3q_server *srv);

/* Runs fn(user) on the loop thread soon (with workers > 1: on worker 0's
 * thread; to finish a response owned by another worker use
 * h3q_server_post_worker). Safe from any thread (not from a signal
 * handler). Posts still run while a stopped server drains. Calls posted
 * before h3q_server_free() that have not run are dropped. Returns
 * H3Q_EINVAL (NULL srv or fn), H3Q_ENOMEM or H3Q_ESTATE (the server's loop
 * has ended). */
H3Q_EXTERN int h3q_server_post(h3q_server *srv, void (*fn)(void *user),
                               void *user);

/* Runs fn(user) on the thread of worker number worker (0..workers-1) soon,
 * in posting order with that worker's other posts. This is how a response
 * that a handler left to another thread is finished: the handler notes
 * h3q_request_worker(req), the other thread posts a function to that
 * worker, and the function writes the response there (while its close
 * callback has not run). With one worker it is h3q_server_post. Safe from
 * any thread (not from a signal handler); posts still run while the server
 * drains; those not run before h3q_server_free() are dropped. Errors:
 * H3Q_EINVAL (NULL srv or fn, or no such worker), H3Q_ENOMEM, H3Q_ESTATE
 * (that worker's loop has ended). */
H3Q_EXTERN int h3q_server_post_worker(h3q_server *srv, unsigned worker,
                                      void (*fn)(void *user), void *user);

/* The worker (0..workers-1) that owns req, its response and connection:
 * the one whose thread runs their callbacks. Call it on that thread (e.g.
 * in the handler) and keep the number; it stays valid while the server
 * exists. Errors: H3Q_EINVAL (NULL), H3Q_ECLOSED (the request is over). */
H3Q_EXTERN int h3q_request_worker(const h3q_request *req);

/* ------------------------------------------------------------- embedding
 *
 * Instead of blocking in h3q_server_run, a program with its own event loop
 * (a GUI toolkit, another server, libuv, a JavaScript runtime) can drive
 * the server: create it with cfg.loop_backend = H3Q_LOOP_EPOLL, call
 * h3q_server_start, watch h3q_server_fd for readability, and call
 * h3q_server_process when it is readable or when the time given by
 * h3q_server_next_timeout_ms has passed:
 *
 *   h3q_server_start(srv);
 *   struct pollfd p = {h3q_server_fd(srv), POLLIN, 0};
 *   for (;;) {
 *     poll(&p, 1, (int)h3q_server_next_timeout_ms(srv)); // and host fds
 *     if (h3q_server_process(srv) != H3Q_OK)
 *       break;                                  // stopped (or failed)
 *   }
 *   h3q_server_free(srv);
 *
 * h3q_server_fd is an epoll fd holding the UDP socket, an eventfd (for
 * h3q_server_post, h3q_server_stop and work queued between process calls)
 * and a timerfd set to the earliest timer. One fd aggregates everything
 * because hosts differ in how they watch fds and timers; with it, watching
 * that fd level-triggered (poll, select, epoll without EPOLLET, libuv's
 * uv_poll_t, GLib's g_unix_fd_add) is enough on its own, and
 * h3q_server_next_timeout_ms is a cheap addition that also covers hosts
 * whose watchers are edge-triggered. The callbacks (handlers, body and
 * close callbacks, posted functions) run inside h3q_server_process, on the
 * host's thread. Between process calls the host may use the API (e.g.
 * finish a response later); h3q then makes the fd readable so that the
 * next process call sends what was queued.
 *
 * examples/embed.c is a complete host loop with poll(). The embedding API
 * drives one loop: with h3q_config.workers > 1, h3q_server_fd and
 * h3q_server_start return H3Q_ECONFIG and log an error naming workers. */

/* h3q_server_process's result once the server has stopped. */
#define H3Q_SERVER_STOPPED 1

/* Returns the fd to watch for readability: an epoll fd that is readable
 * whenever h3q_server_process has work (datagrams, an expired timer, a
 * post, a stop request, work queued by an API call). It is valid and
 * constant from h3q_server_new to h3q_server_free; it is owned by the
 * server: do not read, write or close it (adding it to the host's own
 * poller, including another epoll set, is fine). Errors: H3Q_EINVAL (NULL),
 * H3Q_ECONFIG (the server does not use H3Q_LOOP_EPOLL, or has workers >
 * 1). Any thread. */
H3Q_EXTERN int h3q_server_fd(const h3q_server *srv);

/* Prepares the server to be driven by h3q_server_process (what
 * h3q_server_run does before it blocks: housekeeping timers) and returns at
 * once. From now on the calling thread is the loop thread; routes and the
 * fallback can no longer change. A server is started once: with
 * h3q_server_start or with h3q_server_run, not both. Errors: H3Q_EINVAL
 * (NULL), H3Q_ECONFIG (the server does not use H3Q_LOOP_EPOLL, or has
 * workers > 1), H3Q_ESTATE
 * (already started or running). A stop requested earlier is honoured by the
 * first h3q_server_process call. */
H3Q_EXTERN int h3q_server_start(h3q_server *srv);

/* Does the work that is due, without blocking: reads a bounded batch of
 * datagrams (recv_batch), runs expired timers, posted functions and a
 * pending stop, processes connections (handlers run here) and sends.
 * Cheap and safe to call at any time, also when nothing is ready. Returns
 * H3Q_OK (0) while the server runs; H3Q_SERVER_STOPPED (1) once it has
 * stopped: after h3q_server_stop, when every connection has closed or the
 * drain deadline (drain_timeout_ms) has passed, the remaining connections
 * are closed with H3_NO_ERROR and every later call returns
 * H3Q_SERVER_STOPPED at once. Then stop watching the fd and free the
 * server (h3q_server_free; not from inside a callback). Errors: H3Q_EINVAL
 * (NULL), H3Q_ESTATE (not started with h3q_server_start, or called from
 * inside a callback of this server), H3Q_EIO (the loop failed; the server
 * has stopped as above). Loop thread only. */
H3Q_EXTERN int h3q_server_process(h3q_server *srv);

/* How long the host may wait, in milliseconds, before it must call
 * h3q_server_process even if the fd stays quiet: 0 means call it again now
 * (work remains: more datagrams may be waiting, a wakeup or a timer is
 * due), -1 means no deadline (wait for the fd alone). While the server
 * runs its housekeeping timer keeps the value at most a few hundred ms.
 * Rounded up, so a wait of this length never ends before the timer is
 * due. Returns -1 for NULL, before h3q_server_start and after the server
 * stopped. Loop thread only. */
H3Q_EXTERN int64_t h3q_server_next_timeout_ms(const h3q_server *srv);

/* A request handler. Called once per request when its header section has
 * arrived. The handler may respond at once, or keep req/res and finish later
 * on the loop thread (until the close callback, see h3q_response_on_close).
 * Returning a negative H3Q_E* code makes the library answer with
 * h3q_error_to_status(code) if no header was sent yet, or reset the stream
 * with H3_INTERNAL_ERROR otherwise. */
typedef int (*h3q_handler)(h3q_request *req, h3q_response *res, void *user);

/* Registers handler for method and pattern. method is an upper-case token
 * ("GET", "POST", ...) or "*" for any method. pattern segments: literal
 * ("/hello"), parameter (":id", one whole non-empty segment), or a final
 * "*" segment that matches the rest of the path, including nothing (the
 * pattern "/files/" followed by "*" matches "/files/" and "/files/a/b").
 * Precedence: literal over parameter over wildcard, at the leftmost
 * differing segment; then registration order. Paths are matched raw (not
 * percent-decoded).
 * A GET route also answers HEAD (body dropped) unless a HEAD route exists.
 * No match gives 404; a path matched only under other methods gives 405
 * with an allow header. Errors: H3Q_EINVAL (bad method or pattern),
 * H3Q_EEXIST (same method and pattern twice), H3Q_ESTATE (server running),
 * H3Q_ENOMEM. */
H3Q_EXTERN int h3q_server_route(h3q_server *srv, const char *method,
                                const char *pattern, h3q_handler handler,
                                void *user);

/* Registers a datagram receiver for requests matching method and pattern
 * (the same syntax and precedence as h3q_server_route): before the
 * route's handler runs, h3q_request_on_datagram(req, cb, user) is set up
 * for each such request. Needs enable_h3_datagram. Errors: H3Q_EINVAL,
 * H3Q_EEXIST, H3Q_ESTATE (HTTP Datagrams off, or the server running),
 * H3Q_ENOMEM. */
H3Q_EXTERN int h3q_server_route_datagram(h3q_server *srv, const char *method,
                                         const char *pattern,
                                         h3q_request_datagram_cb cb,
                                         void *user);

/* Sets the handler for requests no route matches (instead of 404). A
 * 405 for a path routed under other methods still takes precedence.
 * handler NULL restores the 404. Errors: H3Q_EINVAL, H3Q_ESTATE (running).
 * h3q_server_serve_dir installs a static file fallback. */
H3Q_EXTERN int h3q_server_set_fallback(h3q_server *srv, h3q_handler handler,
                                       void *user);

/* Serves files below root, with the defaults of h3q_static_new (no
 * listings, index.html), for requests that no route matched: the same
 * handler as h3q_static_handler, installed with h3q_server_set_fallback.
 * Errors: H3Q_EINVAL (root is not a directory), H3Q_ESTATE (running),
 * H3Q_ENOMEM. */
H3Q_EXTERN int h3q_server_serve_dir(h3q_server *srv, const char *root);

/* Sends GOAWAY on connection conn_id (h3q_request_connection_id): requests
 * already received finish (up to drain_timeout_ms), newer ones are refused
 * with H3_REQUEST_REJECTED, then the connection closes with H3_NO_ERROR.
 * Errors: H3Q_ENOTFOUND (no such open connection). Loop thread only. With
 * workers > 1, a connection of another worker than the calling thread's
 * (or a call from a thread that runs no worker) gets its GOAWAY through a
 * post to its worker: then the call returns H3Q_OK (or H3Q_ENOMEM,
 * H3Q_ESTATE as h3q_server_post_worker) without knowing whether the
 * connection is still open. */
H3Q_EXTERN int h3q_server_goaway(h3q_server *srv, uint64_t conn_id);

/* A static file handler any route can use (h3q_server_serve_dir uses the
 * same code for unrouted paths). Create it with h3q_static_new, register
 * h3q_static_handler with it as user data (e.g. under "/assets/" followed
 * by "*": the wildcard part is the file path; without a wildcard the whole
 * request path is), and free it after the server. Path safety: paths are
 * percent-decoded; "." and ".." segments, encoded slashes or backslashes,
 * NUL and any symlink below root give 404 (symlinks are never followed),
 * so nothing outside root is reachable. GET and HEAD; other methods get 405.
 * Responses carry accept-ranges: bytes, a strong etag (from inode, size and
 * mtime in ns) and last-modified. If-Match and If-Unmodified-Since can give
 * 412, If-None-Match (or, without it, If-Modified-Since) 304 without a body. A
 * single byte range on GET gives 206 with content-range, an unsatisfiable
 * one 416; an invalid Range is ignored. Several satisfiable ranges get the
 * whole file with 200 (no multipart/byteranges). If-Range with the
 * current strong etag or the exact last-modified date honours Range, else
 * 200. With list_directories, a directory without its index file gets an
 * HTML listing ("/dir" redirects to "/dir/"). Files stream with one 64 KiB
 * buffer per response. The handler keeps descriptors and metadata of up
 * to 128 recently served files, and the bytes of those up to 16 KB whose
 * ctime is 2 s old (up to 1 MiB per thread). It checks a file with one
 * fstatat per read of datagrams from the socket, not per request (every
 * request of a read was sent before that check; a change made while a
 * request is answered may be seen or not): a file that changed
 * (size, mtime, ctime or inode) is opened afresh, so a changed file is
 * never served with its old bytes, length or etag. An h3q_static may serve
 * several threads at once (a server's workers): each thread gets its own such
 * cache (threads beyond 16 share one, under a lock), so up to 128 descriptors
 * per serving thread. Details: src/handlers/static_files.h. */
typedef struct h3q_static h3q_static;
typedef struct h3q_static_options {
  bool list_directories;  /* false: directories without index.html 404 */
  const char *index_file; /* "index.html"; NULL for none */
} h3q_static_options;

/* Errors in *err: H3Q_EINVAL (root is not a directory), H3Q_ENOMEM. opts
 * may be NULL for defaults. */
H3Q_EXTERN h3q_static *h3q_static_new(const char *root,
                                      const h3q_static_options *opts, int *err);
H3Q_EXTERN void h3q_static_free(h3q_static *st);
H3Q_EXTERN int h3q_static_handler(h3q_request *req, h3q_response *res,
                                  void *user);

/* Why connections ended (index of h3q_server_stats.connections_closed). */
typedef enum h3q_close_reason {
  H3Q_CLOSE_IDLE_TIMEOUT = 0, /* idle timeout (also handshake timeout) */
  H3Q_CLOSE_LOCAL = 1,        /* we closed without error (stop, GOAWAY) */
  H3Q_CLOSE_LOCAL_ERROR = 2,  /* we closed with an error code */
  H3Q_CLOSE_PEER = 3,         /* the peer closed without error */
  H3Q_CLOSE_PEER_ERROR = 4,   /* the peer closed with an error code */
  H3Q_CLOSE_OTHER = 5,        /* none of these (e.g. the server stopped) */
  H3Q_CLOSE_REASONS = 6,      /* reasons so far (new ones are appended) */
} h3q_close_reason;
#define H3Q_CLOSE_REASONS_MAX 8 /* room in h3q_server_stats for them */

/* Why received datagrams (or, for SEND, queued ones) were dropped (index
 * of h3q_server_stats.packets_dropped_by). */
typedef enum h3q_drop_reason {
  H3Q_DROP_MALFORMED = 0,     /* no parsable QUIC header */
  H3Q_DROP_UNKNOWN_CONN = 1,  /* no connection, and not an Initial that may
                                 open one (short Initial, draining, full) */
  H3Q_DROP_VERSION = 2,       /* unsupported version (answered by version
                                 negotiation when big enough) */
  H3Q_DROP_TRUNCATED = 3,     /* larger than the receive buffer */
  H3Q_DROP_QUIC = 4,          /* quiche refused the packet */
  H3Q_DROP_SEND = 5,          /* could not be sent (socket error or full
                                 while closing) */
  H3Q_DROP_INVALID_TOKEN = 6, /* an Initial with a forged, expired or
                                 foreign address validation token */
  H3Q_DROP_OTHER = 7,         /* none of these */
  H3Q_DROP_OVERLOAD = 8,      /* an Initial that would have got a Retry while
                                 the socket had a backlog (see
                                 retry_auto_threshold) */
  H3Q_DROP_HANDOFF = 9,       /* for another server of the port, whose
                                 local socket was full (see steering) */
  H3Q_DROP_REASONS = 10,      /* reasons so far (new ones are appended) */
} h3q_drop_reason;
#define H3Q_DROP_REASONS_MAX 16 /* room in h3q_server_stats for them */

/* Upper bounds, in seconds, of the request duration histogram's buckets
 * (Prometheus' default buckets); the last bucket is +Inf. */
#define H3Q_DURATION_BUCKETS 12
#define H3Q_DURATION_BOUNDS                                                    \
  { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0 }

/* Server-wide counters since creation. Fields are only ever added at the
 * end, so a program built against an older header gets the prefix it
 * knows (h3q_server_get_stats takes the size it has). */
typedef struct h3q_server_stats {
  uint64_t connections_accepted;
  uint64_t connections_active;
  uint64_t requests;
  uint64_t udp_datagrams_received; /* UDP datagrams read from the socket */
  uint64_t udp_datagrams_sent;     /* UDP datagrams handed to the kernel */
  uint64_t packets_dropped; /* every drop (the sum of packets_dropped_by) */
  /* QUIC DATAGRAM frames (with HTTP Datagrams, every one is an HTTP
   * Datagram; DATAGRAM capsules are not counted here). */
  uint64_t datagrams_received;     /* read from the connection */
  uint64_t datagrams_sent;         /* queued for sending */
  uint64_t datagrams_send_dropped; /* the oldest queued one gave way */
  uint64_t datagrams_recv_dropped; /* the receive queue was full */
  uint64_t datagrams_too_large;    /* over dgram_max_payload_size */
  /* No receiver: no connection callback, or (HTTP Datagrams) an unknown
   * or closed stream, or a request without a datagram handler. */
  uint64_t datagrams_unroutable;
  /* WebTransport. */
  uint64_t wt_sessions_accepted; /* answered 2xx */
  uint64_t wt_sessions_rejected; /* refused: handler status, limits */
  uint64_t wt_sessions_active;   /* accepted and not closed yet */
  uint64_t wt_streams_opened;    /* by either side, bound to a session */
  uint64_t wt_streams_rejected;  /* peer streams refused */

  /* Since 0.2. */
  uint64_t connections_closed[H3Q_CLOSE_REASONS_MAX]; /* by h3q_close_reason */
  uint64_t packets_dropped_by[H3Q_DROP_REASONS_MAX];  /* by h3q_drop_reason */
  uint64_t udp_bytes_received; /* payload bytes of udp_datagrams_received */
  uint64_t udp_bytes_sent;     /* payload bytes of udp_datagrams_sent */
  uint64_t version_negotiations_sent;
  uint64_t retries_sent;          /* Retry packets (address validation) */
  uint64_t stateless_resets_sent; /* RFC 9000 section 10.3 */
  /* Finished requests (response complete or reset) by the class of the
   * final status sent: index 1..5 for 1xx..5xx (1xx stays 0: a final
   * status is 200..599), index 0 when no final status was sent (reset
   * before the header section). */
  uint64_t responses_by_class[6];
  uint64_t response_body_bytes; /* body bytes of responses, into QUIC */
  uint64_t downloads_rejected;  /* 503 by max_active_downloads_per_conn */
  /* Request durations, from the stream's opening to the response's end
   * or reset: finished requests per bucket (not cumulative; bucket i
   * holds durations above bound i-1 up to bound i of
   * H3Q_DURATION_BOUNDS, the last one the rest), and their sum. */
  uint64_t request_duration_buckets[H3Q_DURATION_BUCKETS];
  uint64_t request_duration_sum_us;

  /* Address validation under load (retry_auto_threshold). Now:
   * connections in their handshake whose address is not validated
   * (accepted without a Retry token), a gauge. */
  uint64_t handshakes_unvalidated;
  /* Retry packets sent because of load (without enable_retry); a part of
   * retries_sent. */
  uint64_t retries_under_load;
  /* Steering (h3q_config.steering): datagrams handed to another server
   * of the port (their connection ID names it), and datagrams received
   * that way (not counted in udp_datagrams_received). */
  uint64_t packets_handed_off;
  uint64_t packets_handed_in;
  /* NEW_TOKEN (h3q_config.new_token_lifetime): tokens queued in a
   * NEW_TOKEN frame, one per connection; and new connections whose
   * Initial carried a valid one (accepted without a Retry). */
  uint64_t new_tokens_sent;
  uint64_t new_tokens_accepted;
} h3q_server_stats;

/* Copies the counters into *out: min(size, sizeof(h3q_server_stats))
 * bytes (pass sizeof *out). With workers > 1, each field is the sum over
 * the workers, read without locks while they run: a sum may lag behind by
 * the events of the last moments. Any thread. Returns the number of bytes
 * copied, 0 when srv or out is NULL. */
H3Q_EXTERN size_t h3q_server_get_stats(const h3q_server *srv,
                                       h3q_server_stats *out, size_t size);

/* The TCP port of the metrics listener (metrics_addr), 0 when it is off. */
H3Q_EXTERN uint16_t h3q_server_metrics_port(const h3q_server *srv);

/* Writes the metrics exposition (Prometheus text format 0.0.4, what GET
 * /metrics answers) into buf, NUL-terminated. Returns its length without
 * the NUL (when >= len, the text was cut: call again with a larger
 * buffer), or H3Q_EINVAL. */
H3Q_EXTERN ssize_t h3q_server_metrics_text(const h3q_server *srv, char *buf,
                                           size_t len);

/* ------------------------------------------------------- QUIC datagrams */

/* Receives one QUIC DATAGRAM payload on connection conn_id (see
 * h3q_request_connection_id). data is valid only during the call. Called
 * on the loop thread, while the connection is being processed; sending
 * from inside is fine. */
typedef void (*h3q_datagram_cb)(h3q_server *srv, uint64_t conn_id,
                                const uint8_t *data, size_t len, void *user);

/* Sets the connection-scoped datagram receiver (cb NULL removes it;
 * datagrams without a receiver are dropped and counted as unroutable).
 * Only when enable_dgram is set and HTTP Datagrams are not: with
 * enable_h3_datagram every datagram belongs to a request stream.
 * Errors: H3Q_EINVAL (srv NULL), H3Q_ESTATE (datagrams off, HTTP
 * Datagrams on, or the server is running). */
H3Q_EXTERN int h3q_server_on_datagram(h3q_server *srv, h3q_datagram_cb cb,
                                      void *user);

/* Queues one QUIC DATAGRAM (copied) for connection conn_id. It is sent
 * with the connection's next packets, unreliably: it may be lost, and a
 * full send queue drops its oldest datagram to make room (counted in
 * datagrams_send_dropped). Returns H3Q_OK when queued. Errors:
 * H3Q_EINVAL (data NULL with len > 0), H3Q_ENOTFOUND (no such open
 * connection), H3Q_ESTATE (datagrams off, HTTP Datagrams on, or the peer
 * did not announce max_datagram_frame_size), H3Q_ETOOLARGE (over
 * dgram_max_payload_size or what fits in one packet: see
 * h3q_server_datagram_max), H3Q_ECLOSED (the connection is closing).
 * Loop thread only: with workers > 1, the thread of the worker that owns
 * conn_id (where its callbacks run); from other threads H3Q_ENOTFOUND. */
H3Q_EXTERN int h3q_server_send_datagram(h3q_server *srv, uint64_t conn_id,
                                        const void *data, size_t len);

/* The largest payload h3q_server_send_datagram takes on conn_id now, or
 * a negative code as for it (H3Q_ENOTFOUND, H3Q_ESTATE). */
H3Q_EXTERN ssize_t h3q_server_datagram_max(h3q_server *srv, uint64_t conn_id);

/* Writes a new self-signed ECDSA P-256 certificate (PEM) for host (plus
 * localhost, 127.0.0.1 and ::1) valid for days days, and its private key
 * (PEM, PKCS#8, mode 0600). Uses the TLS library inside h3q; no external
 * tool. Errors: H3Q_EINVAL (NULL, days 0 or > 3650), H3Q_ETLS (generation
 * failed), H3Q_EIO (a file could not be written). */
H3Q_EXTERN int h3q_generate_self_signed_cert(const char *cert_path,
                                             const char *key_path,
                                             const char *host, unsigned days);

/* ---------------------------------------------------------- WebTransport */

/* A WebTransport session (the extended CONNECT that opened it, its
 * datagrams and streams) and one of its streams. Both are owned by the
 * library: a session lives until its close callback returns, a stream
 * until its close callback returns (or its session's, which closes the
 * session's streams first). */
typedef struct h3q_wt_session h3q_wt_session;
typedef struct h3q_wt_stream h3q_wt_stream;

/* Decides on one extended CONNECT with :protocol "webtransport" whose path
 * matches the pattern (h3q_request_protocol, h3q_request_header "origin"
 * and the other headers are there to look at). Return a status: 200..299
 * accepts the session (the header section goes out with it; add headers
 * with h3q_response_header on h3q_request_response(req) before
 * returning); any other status (300..599) refuses it, and a negative
 * H3Q_E* code refuses with h3q_error_to_status(code). Set the session's
 * callbacks here; a refused session is freed after the handler returns
 * and none of them run. Do not read the request body or set its body or
 * close callbacks: the CONNECT stream carries the session's capsules.
 * Datagrams, streams and h3q_wt_session_close work once the handler has
 * accepted (they return H3Q_ECLOSED inside it). */
typedef int (*h3q_wt_handler)(h3q_request *req, h3q_wt_session *session,
                              void *user);

/* Serves WebTransport sessions for pattern (path syntax as for
 * h3q_server_route; the method is CONNECT). Needs enable_webtransport.
 * An extended CONNECT for webtransport that no pattern matches gets 404.
 * Before the handler runs, h3q checks that the client's SETTINGS announced
 * HTTP Datagrams (waiting for them if they have not arrived yet); a client
 * without them gets 400. A client WebTransport setting is not required
 * (draft-02 clients such as webtransport-go v0.10 send none). Errors:
 * H3Q_EINVAL, H3Q_EEXIST, H3Q_ESTATE (WebTransport off, or the server
 * running), H3Q_ENOMEM. */
H3Q_EXTERN int h3q_server_webtransport(h3q_server *srv, const char *pattern,
                                       h3q_wt_handler handler, void *user);

/* Maps a WebTransport application error code to the HTTP/3 code that
 * carries it on the wire (draft-ietf-webtrans-http3 section 4.3), and
 * back: h3q_wt_code_from_h3 returns false when h3_code carries none. */
H3Q_EXTERN uint64_t h3q_wt_code_to_h3(uint32_t code);
H3Q_EXTERN bool h3q_wt_code_from_h3(uint64_t h3_code, uint32_t *code);

/* The session id (the CONNECT stream's id) and the CONNECT request
 * (valid as long as the session). */
H3Q_EXTERN uint64_t h3q_wt_session_id(const h3q_wt_session *session);
H3Q_EXTERN h3q_request *h3q_wt_session_request(h3q_wt_session *session);

/* Callbacks; each replaces the one set before, and user is passed back.
 * on_datagram: one datagram from the client (data valid during the
 * call). on_stream: the client opened a stream (set its callbacks there;
 * its first bytes may already be readable). on_drain: the client asked to
 * wind the session down (DRAIN_WEBTRANSPORT_SESSION). on_close: the
 * session ended: the client closed it (code and reason from its
 * CLOSE_WEBTRANSPORT_SESSION capsule, or 0 and "" without one), we did
 * (our code and reason), the CONNECT stream was reset, or the connection
 * closed (0, ""). reason is not NUL-terminated; it and the session are
 * valid only during the call. Every stream of the session has been closed
 * (its close callback ran) before on_close runs. */
typedef void (*h3q_wt_datagram_cb)(h3q_wt_session *session, const uint8_t *data,
                                   size_t len, void *user);
typedef void (*h3q_wt_stream_cb)(h3q_wt_session *session, h3q_wt_stream *stream,
                                 void *user);
typedef void (*h3q_wt_session_cb)(h3q_wt_session *session, void *user);
typedef void (*h3q_wt_close_cb)(h3q_wt_session *session, uint32_t code,
                                const char *reason, size_t reason_len,
                                void *user);
H3Q_EXTERN void h3q_wt_session_on_datagram(h3q_wt_session *session,
                                           h3q_wt_datagram_cb cb, void *user);
H3Q_EXTERN void h3q_wt_session_on_stream(h3q_wt_session *session,
                                         h3q_wt_stream_cb cb, void *user);
H3Q_EXTERN void h3q_wt_session_on_drain(h3q_wt_session *session,
                                        h3q_wt_session_cb cb, void *user);
H3Q_EXTERN void h3q_wt_session_on_close(h3q_wt_session *session,
                                        h3q_wt_close_cb cb, void *user);

/* Sends one datagram (copied) on the session: an HTTP Datagram with the
 * session id, unreliable, under the datagram queue policy (H3Q_OK means
 * queued; see enable_dgram). Errors: H3Q_ETOOLARGE (see
 * h3q_wt_session_datagram_max), H3Q_ECLOSED (the session is closing),
 * H3Q_EINVAL, H3Q_EAGAIN (a client without QUIC datagrams: no room for
 * the DATAGRAM capsule now). */
H3Q_EXTERN int h3q_wt_session_send_datagram(h3q_wt_session *session,
                                            const void *data, size_t len);

/* The largest datagram payload the session can send now, or a negative
 * H3Q_E* code. */
H3Q_EXTERN ssize_t h3q_wt_session_datagram_max(h3q_wt_session *session);

/* Opens a stream to the client, bidirectional or unidirectional; *out is
 * the library's until its close callback. Errors: H3Q_EAGAIN (the
 * client's QUIC stream limit: try again later), H3Q_ETOOLARGE
 * (wt_max_streams_per_session), H3Q_ECLOSED, H3Q_ENOMEM, H3Q_EINVAL. */
H3Q_EXTERN int h3q_wt_session_open_stream(h3q_wt_session *session, bool bidi,
                                          h3q_wt_stream **out);

/* Closes the session: a CLOSE_WEBTRANSPORT_SESSION capsule with code and
 * reason (NULL for none; at most 1024 bytes), the end of the CONNECT
 * stream, and every stream of the session reset with
 * H3Q_WT_SESSION_GONE. on_close follows (later, not from inside this
 * call) with this code and reason. Errors: H3Q_ECLOSED (already closing),
 * H3Q_EINVAL (reason too long), H3Q_ENOMEM. */
H3Q_EXTERN int h3q_wt_session_close(h3q_wt_session *session, uint32_t code,
                                    const char *reason);

/* Asks the client to wind the session down
 * (DRAIN_WEBTRANSPORT_SESSION); the session stays usable. h3q does this
 * for every session when the connection is draining (GOAWAY). Errors:
 * H3Q_ECLOSED, H3Q_ENOMEM. */
H3Q_EXTERN int h3q_wt_session_drain(h3q_wt_session *session);

/* A stream's QUIC id, its session, its kind (bidirectional or not) and
 * who opened it (true: this server). */
H3Q_EXTERN uint64_t h3q_wt_stream_id(const h3q_wt_stream *stream);
H3Q_EXTERN h3q_wt_session *h3q_wt_stream_session(h3q_wt_stream *stream);
H3Q_EXTERN bool h3q_wt_stream_is_bidi(const h3q_wt_stream *stream);
H3Q_EXTERN bool h3q_wt_stream_is_local(const h3q_wt_stream *stream);

/* Stream callbacks (each replaces the previous one). on_readable: bytes,
 * the end or a reset arrived after a read returned H3Q_EAGAIN (or before
 * the first read): read until H3Q_EAGAIN to be told again. on_writable:
 * room appeared after a write took less than asked or H3Q_EAGAIN.
 * on_close: both directions are finished (or the session ended); aborted
 * when a direction was reset or stopped by either side. After on_close
 * returns the stream is freed. */
typedef void (*h3q_wt_stream_event_cb)(h3q_wt_stream *stream, void *user);
typedef void (*h3q_wt_stream_close_cb)(h3q_wt_stream *stream, bool aborted,
                                       void *user);
H3Q_EXTERN void h3q_wt_stream_on_readable(h3q_wt_stream *stream,
                                          h3q_wt_stream_event_cb cb,
                                          void *user);
H3Q_EXTERN void h3q_wt_stream_on_writable(h3q_wt_stream *stream,
                                          h3q_wt_stream_event_cb cb,
                                          void *user);
H3Q_EXTERN void h3q_wt_stream_on_close(h3q_wt_stream *stream,
                                       h3q_wt_stream_close_cb cb, void *user);

/* Reads up to len bytes: the count, 0 at the end of the stream (FIN),
 * H3Q_EAGAIN when nothing is there yet, H3Q_ECLOSED when the client reset
 * it (h3q_wt_stream_reset_code) or the session ended, H3Q_ESTATE on a
 * stream without a receive side (one we opened unidirectional). Bytes
 * stay in QUIC's flow control until read, which holds the client back. */
H3Q_EXTERN ssize_t h3q_wt_stream_read(h3q_wt_stream *stream, void *buf,
                                      size_t len);

/* Writes what fits now (the stream's send window and the congestion
 * window, exactly as h3q_response_write) and returns that count, or
 * H3Q_EAGAIN when nothing fits (on_writable follows). Errors: H3Q_ESTATE
 * (ended, or a stream without a send side), H3Q_ECLOSED (reset, stopped
 * by the client: see h3q_wt_stream_stop_code, or the session ended),
 * H3Q_EINVAL. */
H3Q_EXTERN ssize_t h3q_wt_stream_write(h3q_wt_stream *stream, const void *data,
                                       size_t len);

/* How many bytes a write would take now (0 when blocked), or a negative
 * code as for h3q_wt_stream_write. */
H3Q_EXTERN ssize_t h3q_wt_stream_capacity(h3q_wt_stream *stream);

/* Ends the send side (FIN) after what was written. Errors: H3Q_ESTATE,
 * H3Q_ECLOSED. */
H3Q_EXTERN int h3q_wt_stream_end(h3q_wt_stream *stream);

/* Resets the send side (RESET_STREAM), or asks the client to stop sending
 * (STOP_SENDING), with a WebTransport error code (carried as
 * h3q_wt_code_to_h3(code)). Errors: H3Q_ESTATE (no such side, or it is
 * finished), H3Q_ECLOSED. */
H3Q_EXTERN int h3q_wt_stream_reset(h3q_wt_stream *stream, uint32_t code);
H3Q_EXTERN int h3q_wt_stream_stop(h3q_wt_stream *stream, uint32_t code);

/* The WebTransport code the client reset the stream with
 * (RESET_STREAM), or asked us to stop sending with (STOP_SENDING):
 * 0..2^32-1, or -1 when it did not, or -2 when its code carried no
 * WebTransport code. */
H3Q_EXTERN int64_t h3q_wt_stream_reset_code(const h3q_wt_stream *stream);
H3Q_EXTERN int64_t h3q_wt_stream_stop_code(const h3q_wt_stream *stream);

/* --------------------------------------------------------------- request */

/* Request fields. Returned strings are NUL-terminated, owned by the request
 * and valid until the stream closes. */
H3Q_EXTERN const char *h3q_request_method(const h3q_request *req);
H3Q_EXTERN const char *h3q_request_path(const h3q_request *req); /* no query */
H3Q_EXTERN const char *
h3q_request_query(const h3q_request *req); /* "" if none */
H3Q_EXTERN const char *h3q_request_authority(const h3q_request *req);
H3Q_EXTERN const char *h3q_request_scheme(const h3q_request *req);

/* Returns the first value of the header named name (case-insensitive), or
 * NULL when absent. */
H3Q_EXTERN const char *h3q_request_header(const h3q_request *req,
                                          const char *name);

/* Number of regular (non-pseudo) header fields, and the i-th one (0-based).
 * Returns H3Q_EINVAL when i is out of range. */
H3Q_EXTERN size_t h3q_request_header_count(const h3q_request *req);
H3Q_EXTERN int h3q_request_header_at(const h3q_request *req, size_t i,
                                     const char **name, const char **value);

/* Returns the value of route parameter name (":id" is looked up as "id"),
 * or for a trailing wildcard the name "*"; NULL when absent. */
H3Q_EXTERN const char *h3q_request_param(const h3q_request *req,
                                         const char *name);

/* The :protocol pseudo-header of an extended CONNECT (RFC 9220), e.g.
 * "webtransport", or NULL when the request has none. */
H3Q_EXTERN const char *h3q_request_protocol(const h3q_request *req);

/* Identifiers: the QUIC stream id, and a server-unique connection number. */
H3Q_EXTERN uint64_t h3q_request_stream_id(const h3q_request *req);
H3Q_EXTERN uint64_t h3q_request_connection_id(const h3q_request *req);

/* Whether the client of this request's connection presented a certificate
 * that verified against client_ca_path (false without client_ca_path, or
 * when the client sent none; a certificate that does not verify never
 * gets this far: its handshake fails). */
H3Q_EXTERN bool h3q_request_client_cert_verified(const h3q_request *req);

/* Body events. on_data is called with each chunk as it arrives (the chunk is
 * valid only during the call); on_end when the body is complete (also
 * called, with no data, for requests without a body). Setting callbacks is
 * optional: without on_data the body is read with h3q_request_read(), and
 * on_readable (the same pointer type as on_end) tells when there is more.
 * While paused, no on_data calls are made and QUIC flow control holds the
 * peer back. Calls replace earlier callbacks. */
typedef void (*h3q_body_data_cb)(h3q_request *req, const uint8_t *data,
                                 size_t len, void *user);
typedef void (*h3q_request_cb)(h3q_request *req, void *user);
H3Q_EXTERN void h3q_request_on_body(h3q_request *req, h3q_body_data_cb on_data,
                                    h3q_request_cb on_end, void *user);
H3Q_EXTERN void h3q_request_on_readable(h3q_request *req,
                                        h3q_request_cb on_readable, void *user);
H3Q_EXTERN void h3q_request_pause(h3q_request *req);
H3Q_EXTERN void h3q_request_resume(h3q_request *req);

/* Pull read: copies up to len body bytes into buf. Returns the count, 0 at
 * the end of the body, H3Q_EAGAIN when no data is buffered yet (on_readable
 * or on_end fires later), H3Q_ECLOSED when the stream was reset. */
H3Q_EXTERN ssize_t h3q_request_read(h3q_request *req, void *buf, size_t len);

/* Request trailers (a header section after the body), available once
 * on_end has been called; names are lowercase. The lookup returns NULL when
 * absent. */
H3Q_EXTERN const char *h3q_request_trailer(const h3q_request *req,
                                           const char *name);
H3Q_EXTERN size_t h3q_request_trailer_count(const h3q_request *req);
H3Q_EXTERN int h3q_request_trailer_at(const h3q_request *req, size_t i,
                                      const char **name, const char **value);

/* Transport statistics of the connection a request arrived on (its
 * active path). Fields are only ever added at the end; a program built
 * against an older header gets the prefix it knows. */
typedef struct h3q_conn_stats {
  uint64_t rtt_us;        /* smoothed round-trip time */
  uint64_t min_rtt_us;    /* smallest round-trip time seen */
  uint64_t rttvar_us;     /* round-trip time variation */
  uint64_t cwnd;          /* congestion window, bytes */
  uint64_t pmtu;          /* path MTU (UDP payload), bytes */
  uint64_t delivery_rate; /* latest estimate, bytes per second */
  uint64_t packets_sent, packets_received, packets_lost, packets_retransmitted;
  uint64_t bytes_sent, bytes_received, bytes_lost; /* UDP payload bytes */
} h3q_conn_stats;

/* Fills min(size, sizeof(h3q_conn_stats)) bytes of *out (pass sizeof
 * *out) for req's connection. Errors: H3Q_EINVAL (NULL), H3Q_ECLOSED
 * (the request's stream has closed). */
H3Q_EXTERN int h3q_request_conn_stats(const h3q_request *req,
                                      h3q_conn_stats *out, size_t size);

/* True when the request arrived in 0-RTT early data. */
H3Q_EXTERN bool h3q_request_is_early_data(const h3q_request *req);

/* The request's priority (RFC 9218) from its priority header or a later
 * PRIORITY_UPDATE: urgency 0 (highest) .. 7, default 3; incremental. */
H3Q_EXTERN void h3q_request_priority(const h3q_request *req, uint8_t *urgency,
                                     bool *incremental);

/* The response that answers this request. */
H3Q_EXTERN h3q_response *h3q_request_response(h3q_request *req);

/* True once the whole body has been received and read. */
H3Q_EXTERN bool h3q_request_body_done(const h3q_request *req);

/* HTTP Datagrams (RFC 9297; enable_h3_datagram): see
 * h3q_request_datagram_cb above. */
/* Sets the receiver of req's HTTP Datagrams (cb NULL removes it) until
 * the stream closes. If the request says "capsule-protocol: ?1" (RFC 9297
 * section 3.4), its body is a capsule stream that h3q reads itself:
 * DATAGRAM capsules reach cb as well, other capsule types are skipped, and
 * when the client ends the stream the response is ended too (do not read
 * the body or set body callbacks yourself). Errors: H3Q_ESTATE (HTTP
 * Datagrams are off), H3Q_ECLOSED, H3Q_ENOMEM. */
H3Q_EXTERN int h3q_request_on_datagram(h3q_request *req,
                                       h3q_request_datagram_cb cb, void *user);

/* True when h3q reads req's body as a capsule stream itself (see
 * h3q_request_on_datagram; always for WebTransport sessions). */
H3Q_EXTERN bool h3q_request_uses_capsules(const h3q_request *req);

/* -------------------------------------------------------------- response */

/* Sets the final status (200..599; default 200; 1xx responses go through
 * h3q_response_send_informational) before headers are sent. Errors: H3Q_EINVAL,
 * H3Q_ESTATE (headers already sent). */
H3Q_EXTERN int h3q_response_set_status(h3q_response *res, int status);

/* Adds a header field (copied). The name is lowercased. Errors: H3Q_EINVAL
 * (empty name, pseudo-header, CR/LF/NUL in value), H3Q_ESTATE (headers
 * already sent), H3Q_ENOMEM. */
H3Q_EXTERN int h3q_response_header(h3q_response *res, const char *name,
                                   const char *value);

/* Writes body bytes. Sends the header section first if not sent yet.
 * Accepts what fits in the stream's send window and returns that count (may
 * be less than len); returns H3Q_EAGAIN when nothing fits: wait for the
 * writable callback. For HEAD requests all bytes are accepted and dropped.
 * Errors: H3Q_ESTATE (ended), H3Q_ECLOSED (stream reset or stopped). */
H3Q_EXTERN ssize_t h3q_response_write(h3q_response *res, const void *data,
                                      size_t len);

/* Returns how many body bytes a write would accept now (0 when blocked), or
 * a negative code as for h3q_response_write. */
H3Q_EXTERN ssize_t h3q_response_capacity(h3q_response *res);

/* Ends the response: sends the header section if not sent, then FIN.
 * Errors: H3Q_ESTATE (already ended), H3Q_ECLOSED. After end, the response
 * may still be referenced until the close callback. */
H3Q_EXTERN int h3q_response_end(h3q_response *res);

/* Convenience: status, content-type (may be NULL), content-length, and a
 * whole body (copied; may be larger than the send window; the library sends
 * it as room appears), then end. For 204 and 304 no content-type or
 * content-length is sent and len must be 0 (H3Q_EINVAL otherwise). */
H3Q_EXTERN int h3q_response_send(h3q_response *res, int status,
                                 const char *content_type, const void *body,
                                 size_t len);

/* Registers cb to run when the stream can take more body bytes after a
 * write returned less than asked or H3Q_EAGAIN (pushed flow). */
typedef void (*h3q_response_cb)(h3q_response *res, void *user);
H3Q_EXTERN void h3q_response_on_writable(h3q_response *res, h3q_response_cb cb,
                                         void *user);

/* Registers cb to run once when the stream is finished: the response was
 * fully sent, the peer reset the stream, or the connection closed. After cb
 * returns, req and res are freed and must not be used. aborted tells whether
 * the response was cut short. */
typedef void (*h3q_close_cb)(h3q_response *res, bool aborted, void *user);
H3Q_EXTERN void h3q_response_on_close(h3q_response *res, h3q_close_cb cb,
                                      void *user);

/* Resets the stream (RESET_STREAM and STOP_SENDING) with an HTTP/3 error
 * code (e.g. 0x102 H3_INTERNAL_ERROR). The close callback follows with
 * aborted = true. Errors: H3Q_ECLOSED. */
H3Q_EXTERN int h3q_response_reset(h3q_response *res, uint64_t h3_error);

/* Sends an informational (1xx, not 101) response such as 103 Early
 * Hints before the final one, with the given fields (names lowercased).
 * Errors: H3Q_EINVAL (status or a field invalid), H3Q_ESTATE (the final
 * header section was already sent), H3Q_EAGAIN (no room: retry later),
 * H3Q_ECLOSED. */
H3Q_EXTERN int h3q_response_send_informational(h3q_response *res, int status,
                                               const char *const *names,
                                               const char *const *values,
                                               size_t count);

/* Adds a trailer field, sent after the body when the response ends. Added
 * before the header section is sent, its name is also announced in a
 * trailer header. Errors: H3Q_EINVAL (invalid or pseudo name, bad value),
 * H3Q_ESTATE (already ended), H3Q_ENOMEM. */
H3Q_EXTERN int h3q_response_trailer(h3q_response *res, const char *name,
                                    const char *value);

/* A pull-style body producer: called whenever the stream has room, with
 * room bytes of buf to fill. Return the number of bytes written (set *eof
 * when the body is complete; 0 bytes with *eof is fine), H3Q_EAGAIN when
 * nothing is ready yet (call h3q_response_resume to be asked again), or a
 * negative H3Q_E* code to abort: the stream is then reset with
 * H3_INTERNAL_ERROR. The library ends the response (with any trailers)
 * after eof. */
typedef ssize_t (*h3q_producer)(h3q_response *res, uint8_t *buf, size_t room,
                                bool *eof, void *user);

/* Makes producer supply the body from now on; the library calls it from
 * the loop thread until eof or an error. Errors: H3Q_ESTATE (ended, or
 * body bytes pending from h3q_response_send), H3Q_ECLOSED. */
H3Q_EXTERN int h3q_response_set_producer(h3q_response *res,
                                         h3q_producer producer, void *user);

/* Asks the producer again after it returned H3Q_EAGAIN. */
H3Q_EXTERN void h3q_response_resume(h3q_response *res);

/* Sets the response's priority (RFC 9218), overriding the request's.
 * urgency 0..7 (H3Q_EINVAL otherwise); lower is sent first. */
H3Q_EXTERN int h3q_response_set_priority(h3q_response *res, uint8_t urgency,
                                         bool incremental);

/* Sends one HTTP Datagram (copied) on res's stream: a QUIC DATAGRAM with
 * the stream's quarter id when the client announced H3_DATAGRAM, else,
 * for a request that uses the capsule protocol, a DATAGRAM capsule in the
 * response body (the header section goes first; the capsule is sent
 * whole or not at all). Unreliable either way: H3Q_OK means queued.
 * Errors: H3Q_ESTATE (HTTP Datagrams off, or the client can take neither
 * form), H3Q_ETOOLARGE (over the datagram limits), H3Q_EAGAIN (capsule:
 * no room on the stream now), H3Q_ECLOSED, H3Q_EINVAL (data NULL with
 * len > 0). */
H3Q_EXTERN int h3q_response_send_datagram(h3q_response *res, const void *data,
                                          size_t len);

/* The HTTP/3 error code the peer used to reset or stop the stream (valid
 * in the close callback when aborted), or 0 when it did not. */
H3Q_EXTERN uint64_t h3q_response_peer_error(const h3q_response *res);

/* The request this response answers. */
H3Q_EXTERN h3q_request *h3q_response_request(h3q_response *res);

/* ------------------------------------------------ host (foreign runtimes)
 *
 * For runtimes that call C through an FFI and cannot run C callbacks on
 * their own thread at any time (Bun's bun:ffi, Deno, Python's ctypes): the
 * server loop runs on a thread the library owns, every request goes to the
 * host, and the two sides meet in two queues. Only scalars and pointers
 * cross the boundary.
 *
 *   events   (loop thread -> host): a request arrived, a body chunk, the
 *            body ended, queued response bytes left, a stream closed, the
 *            server stopped. The host drains them in batches with
 *            h3q_host_poll and reads each event's fields with getters.
 *   commands (host -> loop thread): respond, write, end with trailers,
 *            reset, consume (request body credit). Any thread; the loop
 *            thread is woken once per batch of commands (h3q_host_cork
 *            makes the batch as large as the host likes).
 *
 * Streams are named by a 32-bit id (never 0) given in the request event;
 * commands for a stream that has closed are dropped silently (its CLOSED
 * event is on its way). A stream id is not reused while 2^32 - 1 newer
 * requests have not arrived.
 *
 * Events are published at the end of each iteration of the loop thread
 * (a batch of datagrams read, timers run, commands run), not one by one.
 * Waiting for events: h3q_host_start's notify function is called (on the
 * loop thread, without arguments, so a runtime may bounce it to its own
 * thread) once when events are published after h3q_host_poll (or
 * h3q_host_poll_into) has returned 0. Hosts that prefer to block use
 * h3q_host_wait (e.g. in a worker thread); hosts with an fd-based loop
 * watch h3q_host_fd.
 *
 * The loop thread drives its server through the embedding API
 * (h3q_server_process): h3q_host_new uses the H3Q_LOOP_EPOLL backend
 * whatever cfg->loop_backend says.
 *
 * Backpressure: a request body is delivered up to body_window bytes ahead
 * of what the host has consumed (h3q_host_consume); beyond that the stream
 * is paused and QUIC flow control holds the client back. Response bytes
 * the host writes wait in the library until the stream takes them; each
 * H3Q_HOST_WRITTEN event reports how many have left, so the host can keep
 * its own bytes-in-flight bounded. */

typedef struct h3q_host h3q_host;

typedef enum h3q_host_event_kind {
  /* A request: data is its head, NUL-separated: method, path, query,
   * authority, scheme, then name and value of each header field.
   * value's bit 0 is 1 when the request has no body (no BODY events
   * follow), else 0; value >> 1 is the number of its connection
   * (h3q_request_connection_id), the same for every request of that
   * connection. */
  H3Q_HOST_REQUEST = 1,
  /* A request body chunk, or bytes of a WebTransport stream: data/len.
   * The host returns the credit with h3q_host_consume once it has used
   * the bytes. */
  H3Q_HOST_BODY = 2,
  /* The request body is complete; data holds the request trailers in the
   * same name\0value\0 form (len 0 when none); value 0. For a
   * WebTransport stream: the client ended its side (FIN: value 0) or reset
   * it (value 2^32 + its WebTransport code, 0 when it sent none); len 0.
   * Our side of the stream is not affected. */
  H3Q_HOST_BODY_END = 3,
  /* value body bytes written by the host (a response's, or a
   * WebTransport stream's) have left the library's queue for the stream
   * (sent only while the stream is not ended). */
  H3Q_HOST_WRITTEN = 4,
  /* The stream is finished and its id is dead. For a request: value is 0
   * when the response was sent completely, else the peer's HTTP/3 error
   * code, or 0x102 (H3_INTERNAL_ERROR) when it was cut short without one.
   * For a WebTransport stream: 0 when both directions ended cleanly,
   * 2^32 + the WebTransport code when either side reset or stopped it
   * (the client's code, 0 when it sent none), or a negative H3Q_E* code
   * when h3q_host_wt_open_stream's stream could not be opened (H3Q_EAGAIN:
   * the client's stream limit; H3Q_ECLOSED: the session is gone). */
  H3Q_HOST_CLOSED = 5,
  /* The server loop has ended (value: 0, or a negative H3Q_E* code); no
   * events follow. Free the host now. */
  H3Q_HOST_STOPPED = 6,
  /* A WebTransport session was accepted (h3q_host_webtransport): data is
   * its CONNECT request's head as for H3Q_HOST_REQUEST; the id names the
   * session. */
  H3Q_HOST_WT_SESSION = 7,
  /* A datagram of session id: data/len. Dropped when max_events wait. */
  H3Q_HOST_WT_DATAGRAM = 8,
  /* Session id ended: value is the close code, data/len the reason (from
   * the client's CLOSE_WEBTRANSPORT_SESSION, ours, or 0 and empty). */
  H3Q_HOST_WT_CLOSED = 9,
  /* A WebTransport stream: one the client opened (a new id), or one the
   * host asked for with h3q_host_wt_open_stream (that id), now open.
   * value: the session id + 2^32 when the stream is bidirectional. Its
   * bytes come as BODY and BODY_END events (none for a stream the host
   * opened one-way), WRITTEN reports what the host wrote, CLOSED ends
   * it. Streams beyond max_events waiting are refused (reset). */
  H3Q_HOST_WT_STREAM = 10,
} h3q_host_event_kind;

/* h3q_host_respond / h3q_host_write flag: end the response after this. */
#define H3Q_HOST_END 1

/* Creates a host server from cfg (see h3q_server_new for validation,
 * errors and err/errlen); the loop does not run yet. body_window is the
 * request body read-ahead per stream in bytes (0 means 256 KiB).
 * max_events bounds the events waiting for the host (0 means 65536): a
 * request arriving while that many wait gets 503 without reaching the
 * host; body chunks are bounded by body_window instead. The caller owns
 * *out (h3q_host_free). The host API runs one loop thread: cfg->workers
 * > 1 gives H3Q_ECONFIG ("workers: ..." in err). */
H3Q_EXTERN int h3q_host_new(const h3q_config *cfg, size_t body_window,
                            size_t max_events, h3q_host **out, char *err,
                            size_t errlen);

/* Starts the loop thread (named "h3q-host" on Linux). notify may be NULL
 * (see above). Errors: H3Q_EINVAL, H3Q_ESTATE (started before), H3Q_EIO
 * (no thread). */
H3Q_EXTERN int h3q_host_start(h3q_host *host, void (*notify)(void));

/* Starts the host inline instead: the calling thread drives the server
 * (h3q_host_pump) and polls its events, with no loop thread, so that a
 * host on one core does not switch threads per batch. A watcher thread
 * (named "h3q-watch" on Linux) does no HTTP/3 work: once armed
 * (h3q_host_arm) it waits for a datagram or the server's next timer and
 * then calls notify, on its own thread, once. Commands queue as usual and
 * run at the next h3q_host_pump; h3q_host_flush pumps at once and
 * h3q_host_cork has no effect. h3q_host_stop only asks: the server ends
 * in the host's next pumps, the last of which queues H3Q_HOST_STOPPED.
 * h3q_host_pump, h3q_host_arm, h3q_host_stop and h3q_host_free belong to
 * the thread that called this; the watcher is armed on return. notify is
 * required. Errors: H3Q_EINVAL, H3Q_ESTATE (started before), the errors
 * of h3q_server_start, H3Q_EIO (no watcher thread). */
H3Q_EXTERN int h3q_host_start_inline(h3q_host *host, void (*notify)(void));

/* Inline host: receives what has arrived, runs due timers and the queued
 * commands, and sends, a few rounds at most; the events this queued are
 * then ready for h3q_host_poll / h3q_host_poll_into. Returns how many
 * events wait for the host (>= 0; at least 1 when the server just ended
 * and H3Q_HOST_STOPPED was queued), the server's error (H3Q_HOST_STOPPED
 * queued with it), H3Q_EINVAL, or H3Q_ESTATE (not inline, not started,
 * or stopped before). */
H3Q_EXTERN int h3q_host_pump(h3q_host *host);

/* Inline host: arms the watcher, to call notify once a datagram has
 * arrived or the server's next timer is due. Call it when a pump left no
 * events, before going idle; arming an armed watcher updates its
 * deadline. Errors: H3Q_EINVAL, H3Q_ESTATE (not inline or not started). */
H3Q_EXTERN int h3q_host_arm(h3q_host *host);

/* The bound UDP port. */
H3Q_EXTERN uint16_t h3q_host_port(const h3q_host *host);

/* The underlying server, for h3q_server_get_stats (any thread) and for
 * configuration before h3q_host_start (h3q_server_route etc. are then
 * served in C without reaching the host). Owned by the host. */
H3Q_EXTERN h3q_server *h3q_host_server(h3q_host *host);

/* Stops the server: graceful lets streams in progress finish (within
 * drain_timeout_ms; keep serving their commands), otherwise every open
 * stream is reset first. A STOPPED event follows. Any thread; returns
 * immediately. Errors: H3Q_EINVAL, H3Q_ESTATE (not started). */
H3Q_EXTERN int h3q_host_stop(h3q_host *host, bool graceful);

/* Stops the server if still running (not gracefully), joins the loop
 * thread and frees everything, including data of polled events not taken
 * with h3q_host_event_take. Accepts NULL. Not from the notify function. */
H3Q_EXTERN void h3q_host_free(h3q_host *host);

/* Takes the next batch of events: frees the previous batch and returns how
 * many events the new one holds (0 when none; then the next published
 * events call notify). Events are indexed 0..count-1 and valid until the
 * next poll or h3q_host_free. Host thread only (one thread polls). A host
 * uses either this and the getters below or h3q_host_poll_into, not
 * both. */
H3Q_EXTERN size_t h3q_host_poll(h3q_host *host);

/* One event as h3q_host_poll_into writes it: a fixed layout (40 bytes on
 * 64-bit platforms; h3q_host_record_size() returns sizeof, so that a
 * binding can check the layout it reads). Its bytes (for the event kinds
 * that have data, see h3q_host_event_kind) are either owned, a buffer the
 * host now owns and frees with h3q_host_data_free (body chunks, always),
 * or, when owned is NULL, the len bytes at offset in the caller's bytes
 * buffer. */
typedef struct h3q_host_record {
  uint32_t type; /* h3q_host_event_kind */
  uint32_t id;
  int64_t value;
  uint8_t *owned;
  uint64_t offset;
  uint64_t len;
} h3q_host_record;

H3Q_EXTERN size_t h3q_host_record_size(void);

/* Hands out up to max waiting events at once (one call per batch for
 * runtimes where each foreign call costs): writes them to out[0..n) and
 * their bytes to bytes[0..bytes_cap), in event order, and returns n. An
 * event whose bytes do not fit in what is left of bytes waits for the next
 * call, unless it is the first (then its bytes come owned). Returns 0 when
 * no event waits (then the next published events call notify), and also
 * when the first event's bytes could not be copied for lack of memory
 * (it stays queued; the next published events call notify). Events not
 * handed out stay queued in order; body chunks handed out are the host's
 * (owned). Host thread only; 0 for NULL host or out, max 0, or NULL bytes
 * with bytes_cap > 0. */
H3Q_EXTERN size_t h3q_host_poll_into(h3q_host *host, h3q_host_record *out,
                                     size_t max, uint8_t *bytes,
                                     size_t bytes_cap);

/* Fields of event i of the current batch; for an index out of range the
 * type is 0 and the rest 0 or NULL. data is owned by the batch. */
H3Q_EXTERN int h3q_host_event_type(const h3q_host *host, size_t i);
H3Q_EXTERN uint32_t h3q_host_event_id(const h3q_host *host, size_t i);
H3Q_EXTERN int64_t h3q_host_event_value(const h3q_host *host, size_t i);
H3Q_EXTERN const uint8_t *h3q_host_event_data(const h3q_host *host, size_t i);
H3Q_EXTERN size_t h3q_host_event_len(const h3q_host *host, size_t i);

/* Takes ownership of event i's data (so that it can back a runtime's
 * buffer without a copy); NULL when it has none. Free it with
 * h3q_host_data_free, whose (bytes, context) shape is that of a
 * JavaScriptCore array buffer deallocator (bun:ffi toArrayBuffer). */
H3Q_EXTERN uint8_t *h3q_host_event_take(h3q_host *host, size_t i);
H3Q_EXTERN void h3q_host_data_free(void *bytes, void *context);

/* Blocks until an event is waiting or timeout_ms passes (-1: no limit).
 * Returns 1 when events wait, 0 on timeout. Any thread. */
H3Q_EXTERN int h3q_host_wait(h3q_host *host, int timeout_ms);

/* An eventfd that is readable while published events wait (level: the
 * library clears it when h3q_host_poll or h3q_host_poll_into takes them).
 * The library signals it only once a host has asked for it (this call),
 * so hosts that do not watch it pay no system calls for it. Owned by the
 * host; do not read or close it. Errors: H3Q_EINVAL (NULL). */
H3Q_EXTERN int h3q_host_fd(const h3q_host *host);

/* Commands; any thread; copies everything it is given. They return H3Q_OK
 * once queued, H3Q_EINVAL (NULL host, id 0, bad lengths), H3Q_ESTATE (the
 * server has stopped) or H3Q_ENOMEM. Errors found later on the loop thread
 * (an invalid header, a stream already gone) reset the stream or are
 * dropped, and end in a CLOSED event.
 *
 * respond: the status (200..599) and header fields (head: name\0value\0
 * pairs, head_len bytes), optionally a first body part; flags
 * H3Q_HOST_END ends the response after it. write: more body; flags as for
 * respond. trailers: fields sent after the body (same form), then the
 * response ends. reset: resets the stream with an HTTP/3 error code.
 * consume: the host has used n request body bytes (returns credit, see
 * backpressure).
 *
 * cork(true) holds back the loop thread's wakeup for commands queued from
 * then on; cork(false) wakes it once when commands wait. A host that
 * answers a batch of events with many commands corks around the batch, so
 * that the loop thread (on the same core, it would preempt the host for
 * each command) runs them all in one go. flush wakes the loop thread for
 * the commands queued so far even while corked: a host answering many
 * requests of one connection sends the first answers while it makes the
 * rest, so that the client is not left waiting for the whole batch.
 * Errors: H3Q_EINVAL (NULL). */
H3Q_EXTERN int h3q_host_respond(h3q_host *host, uint32_t id, int status,
                                const uint8_t *head, size_t head_len,
                                const uint8_t *body, size_t body_len,
                                int flags);

/* Responds with status, the header fields head (as for h3q_host_respond)
 * and the regular file at path (NUL-terminated; relative paths are
 * relative to the working directory) as the whole body, then ends the
 * response. The file is opened here, on the calling thread:
 * content-length is the size of the open descriptor (fstat; a
 * content-length in head is dropped), and the bytes sent are read from
 * that descriptor on the loop thread. Descriptors of recent files (at
 * most 64) stay open and are reused while a fresh stat of path shows the
 * same unchanged file (device, inode, size, mtime, ctime): one stat
 * instead of open, fstat and close, and none when the path was checked
 * since the loop last read datagrams (so a change made before the
 * request was sent is always seen; one made while it is answered may be
 * seen or not). Files up to 16 KB whose ctime is 2 s old are kept in
 * memory (up to 1 MiB) and sent without reading. HEAD requests, 204 and 304 get
 * no body (and 204/304 no content-length). expect_size >= 0: the file must be
 * that large (a host holding a slice of a file learns that it is not the
 * whole file); -1: any size. path is copied (it need not outlive the
 * call); the library owns and closes the descriptor. A file that shrinks
 * while it is sent resets the stream. Errors: H3Q_EINVAL (as for
 * h3q_host_respond, NULL path, not a regular file, or not expect_size
 * bytes), H3Q_ENOTFOUND (no such file), H3Q_EFORBIDDEN (no permission),
 * H3Q_EIO, H3Q_ESTATE (the server has stopped), H3Q_ENOMEM; after an
 * error nothing was queued and the host still answers the request. */
H3Q_EXTERN int h3q_host_respond_file(h3q_host *host, uint32_t id, int status,
                                     const uint8_t *head, size_t head_len,
                                     const char *path, int64_t expect_size);
H3Q_EXTERN int h3q_host_write(h3q_host *host, uint32_t id, const uint8_t *body,
                              size_t len, int flags);
H3Q_EXTERN int h3q_host_trailers(h3q_host *host, uint32_t id,
                                 const uint8_t *fields, size_t len);
H3Q_EXTERN int h3q_host_reset(h3q_host *host, uint32_t id, uint64_t h3_error);
H3Q_EXTERN int h3q_host_consume(h3q_host *host, uint32_t id, size_t n);
H3Q_EXTERN int h3q_host_cork(h3q_host *host, bool on);
H3Q_EXTERN int h3q_host_flush(h3q_host *host);

/* WebTransport through the host API (needs enable_webtransport): sessions
 * for pattern (as for h3q_server_webtransport) are accepted with 200 and
 * reported as H3Q_HOST_WT_SESSION events; before h3q_host_start. To refuse
 * one, close it at once. wt_send_datagram queues one datagram (copied;
 * unreliable: dropped when too large or the session is closing).
 * wt_close closes the session with a code and a reason (at most 1024
 * bytes); H3Q_HOST_WT_CLOSED follows. Errors as for the other commands;
 * h3q_host_webtransport: H3Q_EINVAL, H3Q_ESTATE (started, or WebTransport
 * off), H3Q_EEXIST, H3Q_ENOMEM.
 *
 * WebTransport streams (H3Q_HOST_WT_STREAM) take the request streams'
 * commands by their id: h3q_host_write sends bytes (H3Q_HOST_END: then
 * FIN), h3q_host_consume returns credit for their bytes (backpressure as
 * for request bodies), h3q_host_reset resets the send side with a
 * WebTransport code (0..2^32-1). wt_open_stream asks for a new stream to
 * the client in session, bidirectional or one-way; *id names it at once,
 * and commands for it may follow at once (they run after the opening;
 * when it fails they are dropped and H3Q_HOST_CLOSED with a negative code
 * says so). wt_stop asks the client to stop sending on stream id
 * (STOP_SENDING) with a WebTransport code. */
H3Q_EXTERN int h3q_host_webtransport(h3q_host *host, const char *pattern);
H3Q_EXTERN int h3q_host_wt_send_datagram(h3q_host *host, uint32_t id,
                                         const uint8_t *data, size_t len);
H3Q_EXTERN int h3q_host_wt_close(h3q_host *host, uint32_t id, uint32_t code,
                                 const uint8_t *reason, size_t len);
H3Q_EXTERN int h3q_host_wt_open_stream(h3q_host *host, uint32_t session,
                                       bool bidi, uint32_t *id);
H3Q_EXTERN int h3q_host_wt_stop(h3q_host *host, uint32_t id, uint32_t code);

#ifdef __cplusplus
}
#endif

#endif /* H3Q_H */
