/* h3q-server: the h3q library as a command-line HTTP/3 server with demo
 * routes and an optional served folder. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h3q.h"

#define EXIT_USAGE 2
#define DEFAULT_CERT_DIR ".h3q"
/* A generated certificate lives 14 days (browsers' limit for
 * serverCertificateHashes); renew it a day before that. */
#define CERT_DAYS 14
#define CERT_RENEW_AGE_S ((CERT_DAYS - 1) * 24 * 3600)
/* /bytes/N content: byte at offset i is (uint8_t)(i % PATTERN_PERIOD). */
#define PATTERN_PERIOD 251
#define PATTERN_CHUNK (PATTERN_PERIOD * 256)
#define MAX_BYTES_N (UINT64_C(1) << 42)

static h3q_server *g_server;
static uint8_t g_pattern[PATTERN_CHUNK + PATTERN_PERIOD];

static void usage(FILE *out) {
  fprintf(out,
          "usage: h3q-server [options]\n"
          "  --addr ADDR          bind address (default 0.0.0.0; :: for "
          "IPv4+IPv6)\n"
          "  --port PORT          UDP port 1..65535 (default 4433)\n"
          "  --cert FILE          PEM certificate chain\n"
          "  --key FILE           PEM private key (without --cert/--key a "
          "self-signed\n"
          "                       ECDSA certificate is generated in "
          "./" DEFAULT_CERT_DIR "/)\n"
          "  --root DIR           serve files from DIR for paths no route "
          "claims\n"
          "  --log-level LEVEL    error|warn|info|debug|trace (default warn)\n"
          "  --idle-timeout MS    connection idle timeout (default 30000)\n"
          "  --max-streams N      concurrent request streams per connection "
          "(default 100)\n"
          "  --cc ALGO            cubic|reno|bbr2 (default cubic)\n"
          "  --max-payload N      max UDP payload size, 1200..65527 (default "
          "1350)\n"
          "  --qlog-dir DIR       write a qlog file per connection into DIR\n"
          "  --help               this text\n"
          "Routes: GET /hello, POST /echo, GET /bytes/:n, GET /user/:id\n");
}

static void on_signal(int sig) {
  (void)sig;
  h3q_server_stop(g_server); /* async-signal-safe */
}

/* ---- demo handlers ---- */

static int hello(h3q_request *req, h3q_response *res, void *user) {
  static const char body[] = "hello from h3q\n";
  return h3q_response_send(res, 200, "text/plain; charset=utf-8", body,
                           sizeof body - 1);
}

static int user_page(h3q_request *req, h3q_response *res, void *user) {
  char body[4200];
  const char *q = h3q_request_query(req);
  int n = q && *q ? snprintf(body, sizeof body, "user %s query %s\n",
                             h3q_request_param(req, "id"), q)
                  : snprintf(body, sizeof body, "user %s\n",
                             h3q_request_param(req, "id"));
  if (n < 0 || (size_t)n >= sizeof body)
    return H3Q_ETOOLARGE;
  return h3q_response_send(res, 200, "text/plain; charset=utf-8", body,
                           (size_t)n);
}

/* GET /bytes/:n streams n pattern bytes as the window allows. */
typedef struct bytes_job {
  uint64_t off, total;
} bytes_job;

static void bytes_pump(h3q_response *res, void *user) {
  bytes_job *job = user;
  while (job->off < job->total) {
    uint64_t left = job->total - job->off;
    size_t want = left < PATTERN_CHUNK ? (size_t)left : PATTERN_CHUNK;
    ssize_t n =
        h3q_response_write(res, g_pattern + job->off % PATTERN_PERIOD, want);
    if (n <= 0)
      return; /* H3Q_EAGAIN: on_writable calls again; else closing */
    job->off += (uint64_t)n;
    if ((size_t)n < want)
      return;
  }
  h3q_response_end(res);
}

static void free_job(h3q_response *res, bool aborted, void *user) {
  free(user);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (!s || !*s)
    return -1;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
      return -1;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *out = v;
  return 0;
}

static int bytes(h3q_request *req, h3q_response *res, void *user) {
  uint64_t n;
  if (parse_u64(h3q_request_param(req, "n"), MAX_BYTES_N, &n) != 0)
    return H3Q_EBADREQUEST;
  bytes_job *job = calloc(1, sizeof *job);
  if (!job)
    return H3Q_ENOMEM;
  job->total = n;
  char len[24];
  snprintf(len, sizeof len, "%llu", (unsigned long long)n);
  h3q_response_on_close(res, free_job, job);
  h3q_response_header(res, "content-type", "application/octet-stream");
  h3q_response_header(res, "content-length", len);
  h3q_response_on_writable(res, bytes_pump, job);
  bytes_pump(res, job);
  return H3Q_OK;
}

/* POST /echo: read what the response can take, write it back. The only
 * buffer is one chunk per stream; quiche's flow control holds the rest. */
typedef struct echo_job {
  h3q_request *req;
  size_t len, off;
  uint8_t buf[65536];
} echo_job;

static void echo_pump(echo_job *e, h3q_response *res) {
  for (;;) {
    while (e->off < e->len) {
      ssize_t n = h3q_response_write(res, e->buf + e->off, e->len - e->off);
      if (n <= 0)
        return; /* blocked (writable callback follows) or closing */
      e->off += (size_t)n;
    }
    ssize_t n = h3q_request_read(e->req, e->buf, sizeof e->buf);
    if (n == 0) {
      h3q_response_end(res);
      return;
    }
    if (n < 0)
      return; /* H3Q_EAGAIN: on_readable/on_end call again */
    e->len = (size_t)n;
    e->off = 0;
  }
}

static void echo_on_request(h3q_request *req, void *user) {
  echo_job *e = user;
  echo_pump(e, h3q_request_response(req));
}

static void echo_on_writable(h3q_response *res, void *user) {
  echo_pump(user, res);
}

static int echo(h3q_request *req, h3q_response *res, void *user) {
  echo_job *e = calloc(1, sizeof *e);
  if (!e)
    return H3Q_ENOMEM;
  e->req = req;
  const char *type = h3q_request_header(req, "content-type");
  h3q_response_on_close(res, free_job, e);
  h3q_response_header(res, "content-type",
                      type ? type : "application/octet-stream");
  h3q_request_on_readable(req, echo_on_request, e);
  h3q_request_on_body(req, NULL, echo_on_request, e);
  h3q_response_on_writable(res, echo_on_writable, e);
  echo_pump(e, res);
  return H3Q_OK;
}

/* ---- set-up ---- */

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

static int parse_number(const char *flag, const char *arg, uint64_t max,
                        uint64_t *out) {
  if (parse_u64(arg, max, out) == 0)
    return 0;
  fprintf(stderr, "h3q-server: %s: '%s' is not a number in 0..%llu\n", flag,
          arg, (unsigned long long)max);
  return -1;
}

enum {
  OPT_ADDR = 256,
  OPT_PORT,
  OPT_CERT,
  OPT_KEY,
  OPT_ROOT,
  OPT_LOG,
  OPT_IDLE,
  OPT_STREAMS,
  OPT_CC,
  OPT_PAYLOAD,
  OPT_QLOG,
  OPT_HELP,
};

typedef struct options {
  h3q_config cfg;
  const char *root;
} options;

static int apply_option(options *o, int opt, const char *arg) {
  uint64_t v = 0;
  switch (opt) {
  case OPT_ADDR:
    o->cfg.bind_addr = arg;
    return 0;
  case OPT_CERT:
    o->cfg.cert_path = arg;
    return 0;
  case OPT_KEY:
    o->cfg.key_path = arg;
    return 0;
  case OPT_ROOT:
    o->root = arg;
    return 0;
  case OPT_CC:
    o->cfg.cc_algorithm = arg;
    return 0;
  case OPT_QLOG:
    o->cfg.qlog_dir = arg;
    return 0;
  case OPT_PORT:
    if (parse_number("--port", arg, UINT32_MAX, &v))
      return -1;
    o->cfg.port = (uint32_t)v;
    return 0;
  case OPT_IDLE:
    return parse_number("--idle-timeout", arg, UINT64_MAX,
                        &o->cfg.idle_timeout_ms);
  case OPT_STREAMS:
    return parse_number("--max-streams", arg, UINT64_MAX,
                        &o->cfg.initial_max_streams_bidi);
  case OPT_PAYLOAD:
    if (parse_number("--max-payload", arg, 1u << 20, &v))
      return -1;
    o->cfg.max_recv_udp_payload_size = o->cfg.max_send_udp_payload_size =
        (size_t)v;
    return 0;
  case OPT_LOG: {
    static const char *const names[] = {"error", "warn", "info", "debug",
                                        "trace"};
    for (int i = 0; i < 5; i++)
      if (strcmp(arg, names[i]) == 0) {
        o->cfg.log_level = (h3q_log_level)i;
        return 0;
      }
    fprintf(stderr,
            "h3q-server: --log-level: '%s' is not one of "
            "error|warn|info|debug|trace\n",
            arg);
    return -1;
  }
  default:
    return -1;
  }
}

static int parse_args(int argc, char **argv, options *o) {
  static const struct option longopts[] = {
      {"addr", required_argument, NULL, OPT_ADDR},
      {"port", required_argument, NULL, OPT_PORT},
      {"cert", required_argument, NULL, OPT_CERT},
      {"key", required_argument, NULL, OPT_KEY},
      {"root", required_argument, NULL, OPT_ROOT},
      {"log-level", required_argument, NULL, OPT_LOG},
      {"idle-timeout", required_argument, NULL, OPT_IDLE},
      {"max-streams", required_argument, NULL, OPT_STREAMS},
      {"cc", required_argument, NULL, OPT_CC},
      {"max-payload", required_argument, NULL, OPT_PAYLOAD},
      {"qlog-dir", required_argument, NULL, OPT_QLOG},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (opt == OPT_HELP) {
      usage(stdout);
      exit(0);
    }
    if (opt == '?' || apply_option(o, opt, optarg) != 0)
      return -1;
  }
  if (optind < argc) {
    fprintf(stderr, "h3q-server: unexpected argument '%s'\n", argv[optind]);
    return -1;
  }
  if ((o->cfg.cert_path == NULL) != (o->cfg.key_path == NULL)) {
    fprintf(stderr, "h3q-server: %s: --cert and --key go together\n",
            o->cfg.cert_path ? "key" : "cert");
    return -1;
  }
  return 0;
}

static int add_routes(h3q_server *srv, const char *root) {
  int rc = h3q_server_route(srv, "GET", "/hello", hello, NULL);
  if (!rc)
    rc = h3q_server_route(srv, "POST", "/echo", echo, NULL);
  if (!rc)
    rc = h3q_server_route(srv, "GET", "/bytes/:n", bytes, NULL);
  if (!rc)
    rc = h3q_server_route(srv, "GET", "/user/:id", user_page, NULL);
  if (rc) {
    fprintf(stderr, "h3q-server: routes: %s\n", h3q_strerror(rc));
    return rc;
  }
  if (root && (rc = h3q_server_serve_dir(srv, root)) != H3Q_OK)
    fprintf(stderr, "h3q-server: root: '%s': %s\n", root, h3q_strerror(rc));
  return rc;
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv) {
  options o = {0};
  h3q_config_init(&o.cfg);
  if (parse_args(argc, argv, &o) != 0) {
    fprintf(stderr, "h3q-server: see --help\n");
    return EXIT_USAGE;
  }
  if (!o.cfg.cert_path && ensure_cert(&o.cfg.cert_path, &o.cfg.key_path))
    return EXIT_USAGE;
  for (size_t i = 0; i < sizeof g_pattern; i++)
    g_pattern[i] = (uint8_t)(i % PATTERN_PERIOD);

  char err[256];
  int rc = h3q_server_new(&o.cfg, &g_server, err, sizeof err);
  if (rc != H3Q_OK) {
    fprintf(stderr, "h3q-server: %s\n", err);
    return EXIT_USAGE;
  }
  if (add_routes(g_server, o.root) != H3Q_OK) {
    h3q_server_free(g_server);
    return EXIT_USAGE;
  }
  install_signals();
  printf("h3q-server listening on %s:%u\n", o.cfg.bind_addr,
         h3q_server_port(g_server));
  fflush(stdout);
  rc = h3q_server_run(g_server);
  h3q_server_free(g_server);
  return rc == H3Q_OK ? 0 : 1;
}
