/* h3q-server: the h3q library as a command-line HTTP/3 server with demo
 * routes and an optional served folder. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"
#include "h3q.h"

#define EXIT_USAGE 2
#define DEFAULT_CERT_DIR ".h3q"
/* A generated certificate lives 14 days (browsers' limit for
 * serverCertificateHashes); renew it a day before that. */
#define CERT_DAYS 14
#define CERT_RENEW_AGE_S ((CERT_DAYS - 1) * 24 * 3600)
#define TICKET_KEY_LEN 48

static h3q_server *g_server;

/* Command-line options: most set one h3q_config field by name, through
 * the library's own parser (h3q_config_set). */
typedef enum opt_kind {
  OPT_FIELD,    /* the field takes the argument as its value */
  OPT_FLAG,     /* bool field set to true, no argument */
  OPT_UNFLAG,   /* bool field set to false, no argument */
  OPT_PAYLOAD,  /* both UDP payload sizes */
  OPT_DGRAM_Q,  /* both datagram queue lengths */
  OPT_H3_DGRAM, /* HTTP Datagrams, and so QUIC DATAGRAMs */
  OPT_ROOT,     /* served folder (not a config field) */
  OPT_LIST,     /* directory listings for --root */
  OPT_TICKET,   /* file holding the 48-byte 0-RTT ticket key */
  OPT_EMBED,    /* drive the server through the embedding API */
  OPT_HELP,
} opt_kind;

typedef struct opt_def {
  const char *name, *arg, *help;
  opt_kind kind;
  const char *field; /* h3q_config field; config errors start with it */
} opt_def;

#define CFG(f) #f

static const opt_def opts[] = {
    {"addr", "ADDR", "bind address (default 0.0.0.0; :: for IPv4+IPv6)",
     OPT_FIELD, CFG(bind_addr)},
    {"port", "PORT", "UDP port 0..65535, 0 = any free one (default 4433)",
     OPT_FIELD, CFG(port)},
    {"cert", "FILE", "PEM certificate chain", OPT_FIELD, CFG(cert_path)},
    {"key", "FILE",
     "PEM private key (without --cert/--key a self-signed ECDSA\n"
     "                           certificate is generated in "
     "./" DEFAULT_CERT_DIR "/)",
     OPT_FIELD, CFG(key_path)},
    {"root", "DIR", "serve files from DIR for paths no route claims", OPT_ROOT,
     NULL},
    {"list-dirs", NULL, "list directories without index.html under --root",
     OPT_LIST, NULL},
    {"log-level", "LEVEL", "error|warn|info|debug|trace (default warn)",
     OPT_FIELD, CFG(log_level)},
    {"idle-timeout", "MS", "connection idle timeout (default 30000)", OPT_FIELD,

     CFG(idle_timeout_ms)},
    {"max-streams", "N", "concurrent request streams per connection (100)",
     OPT_FIELD, CFG(initial_max_streams_bidi)},
    {"max-requests-per-conn", "N",
     "requests in progress per connection before 503 (0: no limit)", OPT_FIELD,

     CFG(max_active_requests_per_conn)},
    {"max-resets-per-sec", "N",
     "request streams a client may reset per second before the\n"
     "                           connection closes (200; 0: no limit)",
     OPT_FIELD, CFG(max_request_resets_per_sec)},
    {"max-connections", "N",
     "connections at once; Initials beyond are dropped (10000)", OPT_FIELD,
     CFG(max_connections)},
    {"max-header-count", "N", "request header fields (100) -> 431", OPT_FIELD,

     CFG(max_header_count)},
    {"max-header-name", "N", "header name bytes (256) -> 431", OPT_FIELD,

     CFG(max_header_name_length)},
    {"max-header-value", "N", "header value bytes (8192) -> 431", OPT_FIELD,

     CFG(max_header_value_length)},
    {"max-header-bytes", "N", "header section bytes (16384) -> 431", OPT_FIELD,

     CFG(max_request_headers_size)},
    {"max-path", "N", "path bytes (2048) -> 414", OPT_FIELD,

     CFG(max_path_length)},
    {"max-body", "N", "request body bytes (104857600) -> 413", OPT_FIELD,

     CFG(max_request_body_size)},
    {"header-timeout", "MS", "time to send a header section (10000; 0 off)",
     OPT_FIELD, CFG(request_header_timeout_ms)},
    {"body-timeout", "MS", "request body idle time (30000; 0 off) -> 408",
     OPT_FIELD, CFG(body_idle_timeout_ms)},
    {"drain-timeout", "MS", "graceful shutdown deadline (5000)", OPT_FIELD,

     CFG(drain_timeout_ms)},
    {"active-migration", NULL,
     "let clients migrate to a new address (clears disable_active_migration)",
     OPT_UNFLAG, CFG(disable_active_migration)},
    {"early-data", NULL, "accept 0-RTT (unsafe methods get 425)", OPT_FLAG,
     CFG(enable_early_data)},
    {"ticket-key", "FILE",
     "48-byte session ticket key shared by processes\n"
     "                           (--secret-file derives one; this wins)",
     OPT_TICKET, "ticket_key_len"},
    {"secret-file", "FILE",
     "32..4096 secret bytes shared by restarts and workers:\n"
     "                           keys for Retry tokens, stateless resets, "
     "CIDs, tickets",
     OPT_FIELD, CFG(secret_file)},
    {"retry", NULL, "validate client addresses with a Retry first", OPT_FLAG,
     CFG(enable_retry)},
    {"quic-lb-config-id", "N",
     "QUIC-LB config rotation 0..6 (with --quic-lb-server-id)", OPT_FIELD,
     CFG(quic_lb_config_id)},
    {"quic-lb-server-id", "HEX",
     "QUIC-LB server id, 1..15 bytes in hex, in every connection ID\n"
     "                             (a load balancer routes by it)",
     OPT_FIELD, CFG(quic_lb_server_id)},
    {"quic-lb-nonce-len", "N",
     "QUIC-LB nonce bytes after the server id, 4..18 (8)", OPT_FIELD,
     CFG(quic_lb_nonce_len)},
    {"retry-auto", "N",
     "Retry first while N handshakes from unvalidated\n"
     "                           addresses are in progress (128; 0 never)",
     OPT_FIELD, CFG(retry_auto_threshold)},
    {"new-token-lifetime", "SECONDS",
     "NEW_TOKEN tokens: returning clients skip the Retry\n"
     "                           (86400; 0 none sent or accepted)",
     OPT_FIELD, CFG(new_token_lifetime)},
    {"client-ca", "FILE",
     "PEM CAs for client certificates (asks clients for one)", OPT_FIELD,
     CFG(client_ca_path)},
    {"client-cert-required", NULL,
     "refuse clients without a certificate (needs --client-ca)", OPT_FLAG,
     CFG(client_cert_required)},
    {"qpack-max-table-capacity", "N",
     "QPACK dynamic table for request headers, bytes (4096; 0 off)", OPT_FIELD,

     CFG(qpack_max_table_capacity)},
    {"qpack-blocked-streams", "N",
     "request streams that may wait for QPACK inserts (16)", OPT_FIELD,

     CFG(qpack_blocked_streams)},
    {"extended-connect", NULL, "allow extended CONNECT (RFC 9220)", OPT_FLAG,
     CFG(enable_extended_connect)},
    {"datagrams", NULL,
     "accept QUIC DATAGRAMs (RFC 9221); the demo echoes them back", OPT_FLAG,
     CFG(enable_dgram)},
    {"h3-datagrams", NULL,
     "HTTP Datagrams (RFC 9297; implies --datagrams); the demo echoes\n"
     "                           them on /dgram/echo",
     OPT_H3_DGRAM, CFG(enable_h3_datagram)},
    {"webtransport", NULL,
     "WebTransport over HTTP/3 (implies --h3-datagrams); the demo\n"
     "                           echoes on /wt/echo",
     OPT_FLAG, CFG(enable_webtransport)},
    {"dgram-queue", "N", "datagrams queued per direction (256)", OPT_DGRAM_Q,
     "dgram_recv_queue_len"},
    {"dgram-max-payload", "N", "largest datagram payload, 16..65527", OPT_FIELD,
     CFG(dgram_max_payload_size)},
    {"cc", "ALGO", "cubic|reno|bbr2 (default cubic)", OPT_FIELD,

     CFG(cc_algorithm)},
    {"max-payload", "N", "max UDP payload size, 1200..65527 (1350)",
     OPT_PAYLOAD, "max_send_udp_payload_size"},
    {"pmtud", "on|off", "path MTU discovery from 1200 bytes up (off)",
     OPT_FIELD, CFG(enable_pmtud)},
    {"qlog-dir", "DIR", "write a qlog file per connection into DIR", OPT_FIELD,

     CFG(qlog_dir)},
    {"keylog", "FILE", "append TLS keys to FILE (NSS key log; secret!)",
     OPT_FIELD, CFG(keylog_path)},
    {"log-format", "FMT", "text|json log lines (default text)", OPT_FIELD,
     CFG(log_format)},
    {"access-log", "FILE|-", "one line per request into FILE (- = stdout)",
     OPT_FIELD, CFG(access_log_path)},
    {"metrics", "ADDR:PORT",
     "Prometheus metrics at http://ADDR:PORT/metrics\n"
     "                             (TCP; [::1]:PORT for IPv6; port 0 = any)",
     OPT_FIELD, CFG(metrics_addr)},
    {"recv-buffer", "BYTES", "UDP SO_RCVBUF, 2048..1 GiB (default 8 MiB)",
     OPT_FIELD, CFG(recv_buffer_size)},
    {"send-buffer", "BYTES", "UDP SO_SNDBUF, 2048..1 GiB (default 8 MiB)",
     OPT_FIELD, CFG(send_buffer_size)},
    {"max-downloads-per-conn", "N",
     "GET/HEAD requests in progress per connection\n"
     "                             beyond get 503 (default 0 = no limit)",
     OPT_FIELD, CFG(max_active_downloads_per_conn)},
    {"backend", "BACKEND", "event loop: libev|epoll (default libev)", OPT_FIELD,
     CFG(loop_backend)},
    {"loop", "BACKEND", "the same as --backend", OPT_FIELD, CFG(loop_backend)},
    {"steering", "MODE",
     "auto|ebpf|handoff: how datagrams reach the server of\n"
     "                             the port that owns their connection when "
     "several\n"
     "                             share it (default auto: eBPF if allowed)",
     OPT_FIELD, CFG(steering)},
    {"udp-no-mmsg", NULL,
     "one datagram per system call (recvmsg/sendmsg,\n"
     "                             not recvmmsg/sendmmsg)",
     OPT_FLAG, CFG(udp_single_syscalls)},
    {"workers", "N|auto",
     "event loops, each on its own thread and socket on the\n"
     "                             same port: 1..32, auto = one per CPU (1)",
     OPT_FIELD, CFG(workers)},
    {"embedded-loop", NULL,
     "run our own poll() loop through the embedding API\n"
     "                             (h3q_server_start/process; implies "
     "--backend epoll)",
     OPT_EMBED, NULL},
    {"help", NULL, "this text", OPT_HELP, NULL},
};

#define OPT_COUNT (sizeof opts / sizeof opts[0])

typedef struct options {
  h3q_config cfg;
  const char *root;
  bool list_dirs;
  bool embedded;   /* --embedded-loop */
  bool loop_given; /* --backend (or --loop) */
  uint8_t ticket_key[TICKET_KEY_LEN];
} options;

static void usage(FILE *out) {
  fprintf(out, "usage: h3q-server [options]\n");
  for (size_t i = 0; i < OPT_COUNT; i++) {
    char left[48];
    snprintf(left, sizeof left, "--%s%s%s", opts[i].name,
             opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
    fprintf(out, "  %-26s %s\n", left, opts[i].help);
  }
  fprintf(out, "Demo routes: GET /hello, POST /echo, GET /bytes/:n, "
               "GET /user/:id,\n  GET /trailers, GET /produce/:n, "
               "POST /digest, GET /hints,\n  GET /client-cert (verified|none), "
               "GET /stats (server counters as JSON),\n  GET /connstats (the "
               "connection's RTT, cwnd, bytes as JSON);\n  --datagrams echoes "
               "every QUIC DATAGRAM; --webtransport: /wt/echo\n  (WebTransport "
               "echo), GET /wt/cert-hash\n"
               "Signals: SIGINT/SIGTERM stop gracefully; SIGHUP reloads --cert "
               "and --key\n  (and --client-ca) for new connections.\n"
               "Restart without downtime: start the new server on the same "
               "--addr/--port\n  (they share it), then SIGTERM the old one: it "
               "takes no new connections\n  and exits once its own "
               "finished.\n");
}

static void on_signal(int sig) {
  if (sig == SIGHUP)
    h3q_server_reload_tls(g_server); /* async-signal-safe */
  else
    h3q_server_stop(g_server); /* async-signal-safe */
}

static int ensure_cert(const char **cert, const char **key) {
  static const char *dir = DEFAULT_CERT_DIR;
  static char cert_path[256], key_path[256];
  snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
  snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
  *cert = cert_path;
  *key = key_path;
  struct stat st;
  if (stat(cert_path, &st) == 0 && access(key_path, R_OK) == 0 &&
      time(NULL) - st.st_mtime < CERT_RENEW_AGE_S)
    return 0;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "h3q-server: cert: cannot create %s: %s\n", dir,
            strerror(errno));
    return -1;
  }
  int rc = h3q_generate_self_signed_cert(cert_path, key_path, "localhost",
                                         CERT_DAYS);
  if (rc != H3Q_OK) {
    fprintf(stderr, "h3q-server: cert: cannot generate: %s\n",
            h3q_strerror(rc));
    return -1;
  }
  fprintf(stderr, "h3q-server: generated self-signed certificate %s\n",
          cert_path);
  return 0;
}

static int read_ticket_key(options *o, const char *path) {
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(o->ticket_key, 1, sizeof o->ticket_key, f) : 0;
  bool more = f && fgetc(f) != EOF;
  if (f)
    fclose(f);
  if (n != sizeof o->ticket_key || more) {
    fprintf(stderr,
            "h3q-server: --ticket-key: '%s' must hold exactly %d "
            "bytes\n",
            path, TICKET_KEY_LEN);
    return -1;
  }
  o->cfg.ticket_key = o->ticket_key;
  o->cfg.ticket_key_len = sizeof o->ticket_key;
  return 0;
}

/* Sets a config field through the library's parser. */
static int set_field(options *o, const opt_def *d, const char *field,
                     const char *arg) {
  int rc = h3q_config_set(&o->cfg, field, arg);
  if (rc == H3Q_OK)
    return 0;
  fprintf(stderr, "h3q-server: --%s: '%s' is not a valid %s (%s)\n", d->name,
          arg, field, h3q_strerror(rc));
  return -1;
}

static int apply_option(options *o, const opt_def *d, const char *arg) {
  switch (d->kind) {
  case OPT_FIELD:
    o->loop_given |= strcmp(d->field, "loop_backend") == 0;
    return set_field(o, d, d->field, arg);
  case OPT_FLAG:
    return set_field(o, d, d->field, "true");
  case OPT_UNFLAG:
    return set_field(o, d, d->field, "false");
  case OPT_PAYLOAD:
    return set_field(o, d, "max_recv_udp_payload_size", arg) ||
                   set_field(o, d, "max_send_udp_payload_size", arg)
               ? -1
               : 0;
  case OPT_H3_DGRAM:
    return set_field(o, d, "enable_dgram", "true") ||
                   set_field(o, d, d->field, "true")
               ? -1
               : 0;
  case OPT_DGRAM_Q:
    return set_field(o, d, "dgram_recv_queue_len", arg) ||
                   set_field(o, d, "dgram_send_queue_len", arg)
               ? -1
               : 0;
  case OPT_ROOT:
    o->root = arg;
    return 0;
  case OPT_LIST:
    o->list_dirs = true;
    return 0;
  case OPT_TICKET:
    return read_ticket_key(o, arg);
  case OPT_EMBED:
    o->embedded = true;
    return 0;
  case OPT_HELP:
    usage(stdout);
    exit(0);
  }
  return -1;
}

/* The flag that sets the config field an error message starts with. */
static const char *flag_for_field(const char *err) {
  size_t len = strcspn(err, ":");
  if (strncmp(err, "max_recv_udp_payload_size", len) == 0)
    return "max-payload"; /* one flag sets both sizes */
  if (strncmp(err, "dgram_send_queue_len", len) == 0)
    return "dgram-queue";
  for (size_t i = 0; i < OPT_COUNT; i++)
    if (opts[i].field && strlen(opts[i].field) == len &&
        strncmp(err, opts[i].field, len) == 0)
      return opts[i].name;
  return NULL;
}

static int parse_args(int argc, char **argv, options *o) {
  struct option longopts[OPT_COUNT + 1];
  for (size_t i = 0; i < OPT_COUNT; i++)
    longopts[i] = (struct option){opts[i].name,
                                  opts[i].arg ? required_argument : no_argument,
                                  NULL, (int)i};
  longopts[OPT_COUNT] = (struct option){NULL, 0, NULL, 0};
  int opt;
  opterr = 0; /* we name the bad option ourselves */
  while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (opt == '?') {
      fprintf(stderr, "h3q-server: unknown option or missing value: %s\n",
              argv[optind - 1]);
      return -1;
    }
    if (apply_option(o, &opts[opt], optarg) != 0)
      return -1;
  }
  if (optind < argc) {
    fprintf(stderr, "h3q-server: unexpected argument '%s'\n", argv[optind]);
    return -1;
  }
  if (o->embedded) {
    if (o->loop_given && o->cfg.loop_backend != H3Q_LOOP_EPOLL) {
      fprintf(stderr, "h3q-server: --embedded-loop: needs --backend epoll\n");
      return -1;
    }
    o->cfg.loop_backend = H3Q_LOOP_EPOLL;
    if (o->cfg.workers > 1) {
      fprintf(stderr, "h3q-server: --workers: --embedded-loop drives one "
                      "loop; workers must be 1\n");
      return -1;
    }
  }
  if ((o->cfg.cert_path == NULL) != (o->cfg.key_path == NULL)) {
    fprintf(stderr, "h3q-server: --%s: --cert and --key go together\n",
            o->cfg.cert_path ? "key" : "cert");
    return -1;
  }
  return 0;
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL); /* reload --cert/--key */
  signal(SIGPIPE, SIG_IGN);
}

static int create_server(options *o) {
  char err[256];
  int rc = h3q_server_new(&o->cfg, &g_server, err, sizeof err);
  if (rc != H3Q_OK) {
    const char *flag = flag_for_field(err);
    fprintf(stderr, "h3q-server: %s%s%s%s\n", flag ? "--" : "",
            flag ? flag : "", flag ? ": " : "", err);
    return rc;
  }
  rc = demo_add_routes(g_server, o->root, o->list_dirs);
  bool wt = o->cfg.enable_webtransport;
  if (rc == H3Q_OK && (o->cfg.enable_dgram || wt))
    rc = demo_add_datagram_echo(g_server, o->cfg.enable_h3_datagram || wt);
  if (rc == H3Q_OK && wt)
    rc = demo_add_webtransport(g_server, o->cfg.cert_path);
  if (rc != H3Q_OK) {
    h3q_server_free(g_server);
    g_server = NULL;
  }
  return rc;
}

/* What a program with its own event loop does (see examples/embed.c):
 * wait on h3q_server_fd for at most h3q_server_next_timeout_ms, then let
 * h3q_server_process do what is due, until it reports the server stopped. */
static int run_embedded(h3q_server *srv) {
  int rc = h3q_server_start(srv);
  struct pollfd pfd = {.fd = h3q_server_fd(srv), .events = POLLIN};
  while (rc == H3Q_OK) {
    int64_t timeout = h3q_server_next_timeout_ms(srv);
    if (poll(&pfd, 1, timeout > INT_MAX ? INT_MAX : (int)timeout) < 0 &&
        errno != EINTR) {
      fprintf(stderr, "h3q-server: poll: %s\n", strerror(errno));
      return H3Q_EIO;
    }
    rc = h3q_server_process(srv);
  }
  return rc == H3Q_SERVER_STOPPED ? H3Q_OK : rc;
}

static int serve(options *o) {
  if (!o->cfg.cert_path && ensure_cert(&o->cfg.cert_path, &o->cfg.key_path))
    return EXIT_USAGE;
  if (create_server(o) != H3Q_OK)
    return EXIT_USAGE;
  install_signals();
  printf("h3q-server listening on %s:%u\n", o->cfg.bind_addr,
         h3q_server_port(g_server));
  if (o->cfg.metrics_addr)
    printf("h3q-server metrics on port %u\n",
           h3q_server_metrics_port(g_server));
  fflush(stdout);
  int rc = o->embedded ? run_embedded(g_server) : h3q_server_run(g_server);
  if (rc != H3Q_OK)
    fprintf(stderr, "h3q-server: %s\n", h3q_strerror(rc));
  h3q_server_free(g_server);
  return rc == H3Q_OK ? 0 : 1;
}

int main(int argc, char **argv) {
  options o = {0};
  h3q_config_init(&o.cfg);
  int rc = EXIT_USAGE;
  if (parse_args(argc, argv, &o) == 0)
    rc = serve(&o);
  else
    fprintf(stderr, "h3q-server: see --help\n");
  h3q_config_release(&o.cfg); /* the copies h3q_config_set made */
  return rc;
}
