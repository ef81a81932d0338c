/* Demo routes: each shows one way to use the API. */
#include "demo.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* /bytes/N and /produce/N content: byte i is (uint8_t)(i % PATTERN_PERIOD),
 * so clients can verify any length without a reference copy. */
#define PATTERN_PERIOD 251
#define PATTERN_CHUNK (PATTERN_PERIOD * 256)
#define MAX_BYTES_N (UINT64_C(1) << 42)
#define TRAILERS_BODY_SIZE 60000 /* fits in g_pattern */

static uint8_t g_pattern[PATTERN_CHUNK + PATTERN_PERIOD];
_Static_assert(TRAILERS_BODY_SIZE <= sizeof g_pattern, "/trailers body");

static void fill_pattern(void) {
  for (size_t i = 0; i < sizeof g_pattern; i++)
    g_pattern[i] = (uint8_t)(i % PATTERN_PERIOD);
}

int demo_parse_u64(const char *s, uint64_t max, uint64_t *out) {
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

static int hello(h3q_request *req, h3q_response *res, void *user) {
  static const char body[] = "hello from h3q\n";
  return h3q_response_send(res, 200, "text/plain; charset=utf-8", body,
                           sizeof body - 1);
}

/* Whether this connection's client proved a certificate (--client-ca). */
static int client_cert(h3q_request *req, h3q_response *res, void *user) {
  const char *body =
      h3q_request_client_cert_verified(req) ? "verified\n" : "none\n";
  return h3q_response_send(res, 200, "text/plain; charset=utf-8", body,
                           strlen(body));
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

static int bytes(h3q_request *req, h3q_response *res, void *user) {
  uint64_t n;
  if (demo_parse_u64(h3q_request_param(req, "n"), MAX_BYTES_N, &n) != 0)
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

/* GET /trailers: a pattern body, then a trailer with its SHA-256. */
static int trailers(h3q_request *req, h3q_response *res, void *user) {
  uint8_t digest[crypto_hash_sha256_BYTES];
  char digest_hex[2 * sizeof digest + 1];
  crypto_hash_sha256(digest, g_pattern, TRAILERS_BODY_SIZE);
  sodium_bin2hex(digest_hex, sizeof digest_hex, digest, sizeof digest);
  int rc = h3q_response_trailer(res, "x-body-sha256", digest_hex);
  if (rc == H3Q_OK)
    rc = h3q_response_trailer(res, "x-body-length", "60000");
  if (rc == H3Q_OK)
    rc = h3q_response_send(res, 200, "application/octet-stream", g_pattern,
                           TRAILERS_BODY_SIZE);
  return rc;
}

/* GET /produce/:n[?fail_at=K]: the pattern through a pull producer; with
 * fail_at the producer fails after K bytes (the stream is reset). */
typedef struct produce_job {
  uint64_t off, total, fail_at;
} produce_job;

static ssize_t produce(h3q_response *res, uint8_t *buf, size_t room, bool *eof,
                       void *user) {
  produce_job *job = user;
  if (job->off >= job->fail_at)
    return H3Q_EINTERNAL;
  uint64_t left = job->total - job->off;
  size_t n = left < room ? (size_t)left : room;
  if (n > PATTERN_CHUNK)
    n = PATTERN_CHUNK;
  memcpy(buf, g_pattern + job->off % PATTERN_PERIOD, n);
  job->off += n;
  *eof = job->off == job->total;
  return (ssize_t)n;
}

static int produce_route(h3q_request *req, h3q_response *res, void *user) {
  produce_job *job = calloc(1, sizeof *job);
  if (!job)
    return H3Q_ENOMEM;
  h3q_response_on_close(res, free_job, job);
  const char *q = h3q_request_query(req);
  job->fail_at = UINT64_MAX;
  if (strncmp(q, "fail_at=", 8) == 0 &&
      demo_parse_u64(q + 8, MAX_BYTES_N, &job->fail_at) != 0)
    return H3Q_EBADREQUEST;
  if (demo_parse_u64(h3q_request_param(req, "n"), MAX_BYTES_N, &job->total))
    return H3Q_EBADREQUEST;
  char len[24];
  snprintf(len, sizeof len, "%llu", (unsigned long long)job->total);
  h3q_response_header(res, "content-type", "application/octet-stream");
  if (job->fail_at == UINT64_MAX)
    h3q_response_header(res, "content-length", len);
  return h3q_response_set_producer(res, produce, job);
}

/* POST /digest: hashes the body as it streams in (push callbacks), then
 * answers with the digest, the length and the request's trailers. */
typedef struct digest_job {
  crypto_hash_sha256_state st;
  uint64_t len;
} digest_job;

static void digest_data(h3q_request *req, const uint8_t *data, size_t len,
                        void *user) {
  digest_job *job = user;
  crypto_hash_sha256_update(&job->st, data, len);
  job->len += len;
}

static void digest_end(h3q_request *req, void *user) {
  digest_job *job = user;
  uint8_t digest[crypto_hash_sha256_BYTES];
  char out[4096], digest_hex[2 * sizeof digest + 1];
  crypto_hash_sha256_final(&job->st, digest);
  sodium_bin2hex(digest_hex, sizeof digest_hex, digest, sizeof digest);
  int n = snprintf(out, sizeof out, "sha256 %s\nlength %llu\n", digest_hex,
                   (unsigned long long)job->len);
  for (size_t i = 0; i < h3q_request_trailer_count(req); i++) {
    const char *name, *value;
    h3q_request_trailer_at(req, i, &name, &value);
    int w = snprintf(out + n, sizeof out - (size_t)n, "trailer %s: %s\n", name,
                     value);
    if (w < 0 || (size_t)w >= sizeof out - (size_t)n)
      break;
    n += w;
  }
  h3q_response_send(h3q_request_response(req), 200, "text/plain", out,
                    (size_t)n);
}

static int digest(h3q_request *req, h3q_response *res, void *user) {
  digest_job *job = calloc(1, sizeof *job);
  if (!job)
    return H3Q_ENOMEM;
  crypto_hash_sha256_init(&job->st);
  h3q_response_on_close(res, free_job, job);
  h3q_request_on_body(req, digest_data, digest_end, job);
  return H3Q_OK;
}

/* GET /hints: 103 Early Hints, then the page. */
static int hints(h3q_request *req, h3q_response *res, void *user) {
  static const char *const names[] = {"link"};
  static const char *const values[] = {"</style.css>; rel=preload; as=style"};
  int rc = h3q_response_send_informational(res, 103, names, values, 1);
  if (rc != H3Q_OK)
    return rc;
  h3q_response_header(res, "link", values[0]);
  static const char body[] = "<!doctype html><link rel=stylesheet "
                             "href=/style.css><p>hints\n";
  return h3q_response_send(res, 200, "text/html", body, sizeof body - 1);
}

/* GET /stats: the server's counters as one JSON object. */
static int stats(h3q_request *req, h3q_response *res, void *user) {
  h3q_server_stats st;
  h3q_server_get_stats(user, &st, sizeof st);
  const struct {
    const char *name;
    uint64_t value;
  } counters[] = {
      {"connections_accepted", st.connections_accepted},
      {"connections_active", st.connections_active},
      {"requests", st.requests},
      {"datagrams_received", st.datagrams_received},
      {"datagrams_sent", st.datagrams_sent},
      {"datagrams_send_dropped", st.datagrams_send_dropped},
      {"datagrams_recv_dropped", st.datagrams_recv_dropped},
      {"datagrams_too_large", st.datagrams_too_large},
      {"datagrams_unroutable", st.datagrams_unroutable},
      {"wt_sessions_accepted", st.wt_sessions_accepted},
      {"wt_sessions_rejected", st.wt_sessions_rejected},
      {"wt_sessions_active", st.wt_sessions_active},
      {"wt_streams_opened", st.wt_streams_opened},
      {"wt_streams_rejected", st.wt_streams_rejected},
  };
  char body[2048];
  size_t len = 0;
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
    int n =
        snprintf(body + len, sizeof body - len, "%s\"%s\":%llu", i ? "," : "{",
                 counters[i].name, (unsigned long long)counters[i].value);
    if (n < 0 || (size_t)n >= sizeof body - len)
      return H3Q_EINTERNAL;
    len += (size_t)n;
  }
  if (len + 2 >= sizeof body)
    return H3Q_EINTERNAL;
  memcpy(body + len, "}\n", 2);
  return h3q_response_send(res, 200, "application/json", body, len + 2);
}

/* GET /connstats: the transport statistics of the request's connection
 * (h3q_request_conn_stats) as one JSON object. */
static int connstats(h3q_request *req, h3q_response *res, void *user) {
  h3q_conn_stats cs;
  int rc = h3q_request_conn_stats(req, &cs, sizeof cs);
  if (rc != H3Q_OK)
    return rc;
  char body[512];
  int n = snprintf(
      body, sizeof body,
      "{\"rtt_us\":%llu,\"min_rtt_us\":%llu,\"cwnd\":%llu,\"pmtu\":%llu,"
      "\"packets_sent\":%llu,\"packets_received\":%llu,"
      "\"packets_lost\":%llu,\"bytes_sent\":%llu,\"bytes_received\":%llu,"
      "\"bytes_lost\":%llu}\n",
      (unsigned long long)cs.rtt_us, (unsigned long long)cs.min_rtt_us,
      (unsigned long long)cs.cwnd, (unsigned long long)cs.pmtu,
      (unsigned long long)cs.packets_sent,
      (unsigned long long)cs.packets_received,
      (unsigned long long)cs.packets_lost, (unsigned long long)cs.bytes_sent,
      (unsigned long long)cs.bytes_received, (unsigned long long)cs.bytes_lost);
  if (n < 0 || (size_t)n >= sizeof body)
    return H3Q_EINTERNAL;
  return h3q_response_send(res, 200, "application/json", body, (size_t)n);
}

static void echo_datagram(h3q_server *srv, uint64_t conn_id,
                          const uint8_t *data, size_t len, void *user) {
  /* Best effort, like the datagram itself: a refusal is just a drop. */
  h3q_server_send_datagram(srv, conn_id, data, len);
}

static void echo_h3_datagram(h3q_request *req, const uint8_t *data, size_t len,
                             void *user) {
  h3q_response_send_datagram(h3q_request_response(req), data, len);
}

static void discard_body(h3q_request *req, const uint8_t *data, size_t len,
                         void *user) {}

static void end_with_request(h3q_request *req, void *user) {
  h3q_response_end(h3q_request_response(req));
}

/* /dgram/echo: the route's datagram receiver echoes; the handler answers
 * 200 at once and ends with the request (h3q does that itself for a
 * capsule stream). */
static int dgram_echo(h3q_request *req, h3q_response *res, void *user) {
  if (!h3q_request_uses_capsules(req))
    h3q_request_on_body(req, discard_body, end_with_request, NULL);
  ssize_t n = h3q_response_write(res, NULL, 0); /* the header section */
  return n < 0 && n != H3Q_EAGAIN ? (int)n : H3Q_OK;
}

int demo_add_datagram_echo(h3q_server *srv, bool h3) {
  int rc = h3 ? h3q_server_route_datagram(srv, "*", "/dgram/echo",
                                          echo_h3_datagram, NULL)
              : h3q_server_on_datagram(srv, echo_datagram, NULL);
  if (rc == H3Q_OK && h3)
    rc = h3q_server_route(srv, "*", "/dgram/echo", dgram_echo, NULL);
  if (rc != H3Q_OK)
    fprintf(stderr, "h3q-server: datagram echo: %s\n", h3q_strerror(rc));
  return rc;
}

typedef struct demo_route {
  const char *method, *pattern;
  h3q_handler handler;
} demo_route;

static const demo_route routes[] = {
    {"GET", "/hello", hello},
    {"POST", "/echo", echo},
    {"GET", "/bytes/:n", bytes},
    {"GET", "/user/:id", user_page},
    {"GET", "/trailers", trailers},
    {"GET", "/produce/:n", produce_route},
    {"POST", "/digest", digest},
    {"GET", "/hints", hints},
    {"GET", "/client-cert", client_cert},
    {"GET", "/connstats", connstats},
};

/* Owned by the process: freed at exit, after the server. */
static h3q_static *g_static;

static void free_static(void) {
  h3q_static_free(g_static);
}

static int serve_root(h3q_server *srv, const char *root, bool list_dirs) {
  h3q_static_options so = {.list_directories = list_dirs,
                           .index_file = "index.html"};
  int err = H3Q_OK;
  g_static = h3q_static_new(root, &so, &err);
  if (!g_static)
    return err ? err : H3Q_ENOMEM;
  atexit(free_static);
  return h3q_server_set_fallback(srv, h3q_static_handler, g_static);
}

int demo_add_routes(h3q_server *srv, const char *root, bool list_dirs) {
  fill_pattern();
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    int rc = h3q_server_route(srv, routes[i].method, routes[i].pattern,
                              routes[i].handler, NULL);
    if (rc != H3Q_OK) {
      fprintf(stderr, "h3q-server: route %s: %s\n", routes[i].pattern,
              h3q_strerror(rc));
      return rc;
    }
  }
  int rc = h3q_server_route(srv, "GET", "/stats", stats, srv);
  if (rc != H3Q_OK) {
    fprintf(stderr, "h3q-server: route /stats: %s\n", h3q_strerror(rc));
    return rc;
  }
  rc = root ? serve_root(srv, root, list_dirs) : H3Q_OK;
  if (rc != H3Q_OK)
    fprintf(stderr, "h3q-server: root: '%s': %s\n", root, h3q_strerror(rc));
  return rc;
}
