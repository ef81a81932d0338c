/* h3q-bench: a closed-loop HTTP/3 load generator. -c connections each keep
 * -s requests in flight; requests start only once every connection is
 * established, so the measured window excludes handshakes. */
#include "bench_opts.h"
#include "bench_report.h"
#include "h3c_conn.h"
#include "util/clock.h"

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Distinct error messages echoed to stderr; the rest are only counted. */
#define BENCH_MAX_ERRORS 5

typedef enum bench_phase {
  BENCH_CONNECTING, /* waiting for every connection's handshake */
  BENCH_RUNNING,    /* requests flowing; results counted */
  BENCH_STOPPED,    /* results final; late completions ignored */
} bench_phase;

typedef struct bench {
  bench_opts opt;
  h3c_ctx x;
  struct ev_loop *loop;
  h3c_tmpl tmpl;
  h3c_conn **conns;
  size_t nconns;
  h3c_conn **retired; /* replaced during the run, freed at the end */
  size_t nretired;
  uint64_t reconnects;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  h3c_req *pool; /* conns * streams requests, reused */
  h3c_req **free_reqs;
  size_t nfree;
  bench_phase phase;
  uint64_t issued, completed, ok, failed, body_bytes;
  unsigned errors_shown;
  bench_lat lat;
  uint64_t t0, t_run, t_last, connect_ns;
  ev_timer deadline, duration;
} bench;

static void stop(bench *b) {
  if (b->phase == BENCH_STOPPED)
    return;
  b->phase = BENCH_STOPPED;
  ev_break(b->loop, EVBREAK_ALL);
}

static h3c_req *hook_next(void *user, h3c_conn *c) {
  (void)c;
  bench *b = user;
  if (b->phase != BENCH_RUNNING || b->nfree == 0)
    return NULL;
  if (b->opt.requests && b->issued >= b->opt.requests)
    return NULL;
  h3c_req *r = b->free_reqs[--b->nfree];
  h3c_req_init(r, &b->tmpl, NULL);
  b->issued++;
  return r;
}

static void count(bench *b, h3c_req *r) {
  if (!r->failed && r->status >= 400) {
    r->failed = true;
    snprintf(r->err, sizeof(r->err), "HTTP status %d", r->status);
  }
  b->completed++;
  b->t_last = r->t_end;
  if (r->failed) {
    b->failed++;
    if (b->errors_shown++ < BENCH_MAX_ERRORS)
      warnx("request failed: %s", r->err);
    return;
  }
  b->ok++;
  b->body_bytes += r->sink.bytes;
  bench_lat_add(&b->lat, h3c_req_ms(r));
}

static void hook_done(void *user, h3c_req *r) {
  bench *b = user;
  if (r->retryable && b->phase == BENCH_RUNNING)
    b->issued--; /* GOAWAY returned it unprocessed: issue it again */
  else if (b->phase == BENCH_RUNNING)
    count(b, r);
  b->free_reqs[b->nfree++] = r;
  if (b->opt.requests && b->completed >= b->opt.requests)
    stop(b);
}

static size_t count_state(const bench *b, h3c_conn_state st) {
  size_t n = 0;
  for (size_t i = 0; i < b->nconns; i++)
    n += b->conns[i] && h3c_conn_state_get(b->conns[i]) == st;
  return n;
}

/* Starts the measured run once no connection is still handshaking. */
static void maybe_start(bench *b) {
  if (b->phase != BENCH_CONNECTING || count_state(b, H3C_CONN_CONNECTING) > 0)
    return;
  if (count_state(b, H3C_CONN_READY) == 0) {
    warnx("no connection could be established");
    stop(b);
    return;
  }
  b->phase = BENCH_RUNNING;
  b->t_run = b->t_last = clock_now_ns();
  b->connect_ns = b->t_run - b->t0;
  if (b->opt.duration > 0) {
    ev_timer_set(&b->duration, b->opt.duration, 0.);
    ev_timer_start(b->loop, &b->duration);
  }
  /* The connection whose handshake finished last is inside its own
   * processing and pulls requests when the hook returns; kick the rest. */
  for (size_t i = 0; i < b->nconns; i++)
    if (b->conns[i] && h3c_conn_state_get(b->conns[i]) == H3C_CONN_READY)
      h3c_conn_kick(b->conns[i]);
}

static void hook_established(void *user, h3c_conn *c) {
  (void)c;
  maybe_start(user);
}

/* Replaces a connection the server closed during the run (GOAWAY, a
 * requests-per-connection limit) so the offered load stays the same. Only
 * connections that had been established are replaced: a server refusing
 * handshakes is not hammered. */
static bool replace_conn(bench *b, h3c_conn *old) {
  unsigned i = h3c_conn_index(old);
  char err[256];
  h3c_conn *c = h3c_conn_new(&b->x, &b->tmpl.u, (struct sockaddr *)&b->addr,
                             b->addr_len, i, err, sizeof(err));
  if (c == NULL) {
    warnx("connection %u: %s", i, err);
    return false;
  }
  b->retired =
      h3c_xrealloc(b->retired, (b->nretired + 1) * sizeof(*b->retired));
  b->retired[b->nretired++] = old;
  b->conns[i] = c;
  b->reconnects++;
  h3c_conn_set_fail_fast(c, true);
  return true;
}

static void hook_closed(void *user, h3c_conn *c) {
  bench *b = user;
  if (b->phase == BENCH_RUNNING && h3c_conn_graceful(c) && replace_conn(b, c))
    return;
  if (b->phase != BENCH_STOPPED && b->errors_shown++ < BENCH_MAX_ERRORS)
    warnx("connection %u closed: %s", h3c_conn_index(c), h3c_conn_error(c));
  maybe_start(b);
  if (b->phase == BENCH_RUNNING && count_state(b, H3C_CONN_READY) == 0 &&
      count_state(b, H3C_CONN_CONNECTING) == 0)
    stop(b);
}

static void duration_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  bench *b = w->data;
  /* -D: the window is exactly the duration; in-flight ones are dropped. */
  b->t_last = clock_now_ns();
  stop(b);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  bench *b = w->data;
  warnx("deadline of %g s reached", b->opt.s.timeout);
  stop(b);
}

static void setup(bench *b) {
  bench_opts *o = &b->opt;
  char err[256];
  const char *uerr = NULL;
  if (h3c_tmpl_init(&b->tmpl, o->url, o->s.method ? o->s.method : "GET",
                    &o->s.headers, NULL, "h3q-bench/0.1", &uerr) != 0)
    h3c_usage_error("%s: %s", o->url, uerr);
  b->loop = EV_DEFAULT;
  if (h3c_ctx_init(&b->x, b->loop, &o->s.tls, err, sizeof(err)) != 0)
    h3c_usage_error("%s", err);
  b->x.parallel = (unsigned)o->streams;
  b->x.hooks =
      (h3c_hooks){hook_next, hook_done, NULL, hook_established, hook_closed, b};
  size_t n = (size_t)(o->conns * o->streams);
  b->pool = h3c_xcalloc(n, sizeof(*b->pool));
  b->free_reqs = h3c_xcalloc(n, sizeof(*b->free_reqs));
  for (size_t i = 0; i < n; i++)
    b->free_reqs[b->nfree++] = &b->pool[i];
  ev_init(&b->deadline, deadline_cb);
  b->deadline.data = b;
  ev_init(&b->duration, duration_cb);
  b->duration.data = b;
}

/* Resolves the host and opens every connection. Returns 0 or -1. */
static int connect_all(bench *b) {
  char err[256];
  const h3c_url *u = &b->tmpl.u;
  if (h3c_resolve(u->host, u->port, &b->addr, &b->addr_len, err, sizeof(err)) !=
      0) {
    warnx("%s", err);
    return -1;
  }
  b->nconns = (size_t)b->opt.conns;
  b->conns = h3c_xcalloc(b->nconns, sizeof(*b->conns));
  b->t0 = clock_now_ns();
  for (size_t i = 0; i < b->nconns; i++) {
    b->conns[i] = h3c_conn_new(&b->x, u, (struct sockaddr *)&b->addr,
                               b->addr_len, (unsigned)i, err, sizeof(err));
    if (b->conns[i] == NULL) {
      warnx("connection %zu: %s", i, err);
      return -1;
    }
  }
  return 0;
}

static void teardown(bench *b) {
  b->phase = BENCH_STOPPED;
  for (size_t i = 0; i < b->nretired; i++)
    h3c_conn_free(b->retired[i]);
  free(b->retired);
  for (size_t i = 0; i < b->nconns; i++) {
    if (b->conns[i]) {
      h3c_conn_close(b->conns[i], "benchmark finished");
      h3c_conn_free(b->conns[i]);
    }
  }
  free(b->conns);
  h3c_ctx_free(&b->x);
  h3c_tmpl_free(&b->tmpl);
  h3c_kvlist_free(&b->opt.s.headers);
  free(b->pool);
  free(b->free_reqs);
}

int main(int argc, char **argv) {
  static bench b;
  bench_opts_parse(&b.opt, argc, argv);
  h3c_set_verbosity(b.opt.s.verbose);
  setup(&b);
  if (b.opt.s.timeout > 0) {
    b.deadline.repeat = b.opt.s.timeout;
    ev_timer_again(b.loop, &b.deadline);
  }
  if (connect_all(&b) == 0)
    ev_run(b.loop, 0);
  /* -n: requests that never finished (deadline, lost connections) failed. */
  if (b.opt.requests && b.ok + b.failed < b.opt.requests)
    b.failed = b.opt.requests - b.ok;
  bench_result res = {
      .url = b.opt.url,
      .conns = b.opt.conns,
      .streams = b.opt.streams,
      .ok = b.ok,
      .failed = b.failed,
      .body_bytes = b.body_bytes,
      .seconds = b.t_run ? clock_ns_to_s(b.t_last - b.t_run) : 0,
      .connect_ms = clock_ns_to_ms(b.connect_ns),
      .lat = &b.lat,
  };
  teardown(&b);
  if (b.reconnects)
    warnx("%llu connections were replaced during the run",
          (unsigned long long)b.reconnects);
  bench_report_print(&res, b.opt.json);
  bench_lat_free(&b.lat);
  return b.failed > 0 || b.ok == 0 ? 1 : 0;
}
