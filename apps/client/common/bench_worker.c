/* One h3q-bench thread: a closed loop over its own connections (each keeps
 * -s requests in flight). Requests start only once every connection of
 * every worker is established, so the measured window excludes
 * handshakes; the worker that settles last starts them all. */
#include "bench_worker.h"

#include "h3c_args.h"
#include "h3c_conn.h"
#include "util/clock.h"

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Distinct error messages echoed to stderr over all threads; the rest are
 * only counted. */
#define BENCH_MAX_ERRORS 5

typedef enum bench_phase {
  BENCH_CONNECTING, /* waiting for every connection's handshake */
  BENCH_RUNNING,    /* requests flowing; results counted */
  BENCH_STOPPED,    /* results final; late completions ignored */
} bench_phase;

struct bench_worker {
  bench_shared *sh;
  const bench_opts *opt;
  unsigned id;
  struct ev_loop *loop;
  h3c_ctx x;
  h3c_tmpl tmpl;
  size_t first;     /* global index of conns[0] */
  h3c_conn **conns; /* slot i holds connection first + i */
  size_t nconns;
  h3c_conn **retired; /* replaced during the run, freed at the end */
  size_t nretired;
  h3c_req *pool; /* nconns * streams requests, reused */
  h3c_req **free_reqs;
  size_t nfree;
  bench_phase phase;
  bool settled; /* counted in sh->settled */
  bench_totals t;
  ev_timer deadline, duration;
  ev_async wake; /* start or stop decided by another worker */
  /* --rate: requests started per connection slot, and the tick that
   * kicks connections whose next request is due. */
  uint64_t *started;
  ev_timer tick;
};

static void stop_local(bench_worker *w) {
  if (w->phase == BENCH_STOPPED)
    return;
  w->phase = BENCH_STOPPED;
  ev_break(w->loop, EVBREAK_ALL);
}

void bench_stop_all(bench_shared *sh) {
  atomic_store(&sh->stopping, true);
  for (unsigned i = 0; i < sh->nworkers; i++)
    ev_async_send(sh->workers[i]->loop, &sh->workers[i]->wake);
}

static void warn_limited(bench_shared *sh, const char *what, const char *why) {
  if (atomic_fetch_add(&sh->errors_shown, 1) < BENCH_MAX_ERRORS)
    warnx("%s: %s", what, why);
}

/* Takes one request from the -n budget shared by all workers. */
static bool take_budget(bench_shared *sh) {
  uint64_t max = sh->opt->requests;
  if (max == 0)
    return true;
  if (atomic_fetch_add(&sh->issued, 1) < max)
    return true;
  atomic_fetch_sub(&sh->issued, 1);
  return false;
}

/* --rate: when request k of connection g is due. Connection g's requests
 * are 1 / (rate / C) apart and the connections are staggered by 1 / rate,
 * so the whole client starts one request every 1 / rate seconds. */
static uint64_t due_ns(const bench_worker *w, size_t g, uint64_t k) {
  double per_conn = (double)k * (double)w->opt->conns + (double)g;
  return atomic_load(&w->sh->t_run) + (uint64_t)(per_conn * 1e9 / w->opt->rate);
}

/* Closed loop: always. Open loop: when c's next request is due. */
static bool may_start(bench_worker *w, h3c_conn *c) {
  if (w->opt->rate <= 0)
    return true;
  size_t g = h3c_conn_index(c);
  uint64_t *k = &w->started[g - w->first];
  if (clock_now_ns() < due_ns(w, g, *k))
    return false;
  (*k)++;
  return true;
}

static h3c_req *hook_next(void *user, h3c_conn *c) {
  bench_worker *w = user;
  if (w->phase != BENCH_RUNNING || w->nfree == 0 || !may_start(w, c))
    return NULL;
  if (!take_budget(w->sh)) {
    if (w->opt->rate > 0)
      w->started[h3c_conn_index(c) - w->first]--;
    return NULL;
  }
  h3c_req *r = w->free_reqs[--w->nfree];
  h3c_req_init(r, &w->tmpl, NULL);
  return r;
}

static void count(bench_worker *w, h3c_req *r) {
  if (!r->failed && r->status >= 400) {
    r->failed = true;
    snprintf(r->err, sizeof(r->err), "HTTP status %d", r->status);
  }
  w->t.t_last = r->t_end;
  if (r->failed) {
    w->t.failed++;
    warn_limited(w->sh, "request failed", r->err);
  } else {
    w->t.ok++;
    w->t.body_bytes += r->sink.bytes;
    bench_lat_add_ns(&w->t.lat,
                     r->t_end > r->t_start ? r->t_end - r->t_start : 0);
  }
  uint64_t max = w->opt->requests;
  if (max && atomic_fetch_add(&w->sh->finished, 1) + 1 >= max)
    bench_stop_all(w->sh);
}

static void hook_done(void *user, h3c_req *r) {
  bench_worker *w = user;
  if (r->retryable && w->phase == BENCH_RUNNING) {
    if (w->opt->requests) /* GOAWAY returned it unprocessed: issue again */
      atomic_fetch_sub(&w->sh->issued, 1);
  } else if (w->phase == BENCH_RUNNING) {
    count(w, r);
  }
  w->free_reqs[w->nfree++] = r;
}

static size_t count_state(const bench_worker *w, h3c_conn_state st) {
  size_t n = 0;
  for (size_t i = 0; i < w->nconns; i++)
    n += w->conns[i] && h3c_conn_state_get(w->conns[i]) == st;
  return n;
}

static void wake_all(bench_shared *sh) {
  for (unsigned i = 0; i < sh->nworkers; i++)
    ev_async_send(sh->workers[i]->loop, &sh->workers[i]->wake);
}

/* Once no connection of w is handshaking, w counts as settled; the last
 * worker to settle starts the run everywhere (or stops it when no
 * connection could be established at all). */
static void maybe_settle(bench_worker *w) {
  if (w->settled || w->phase == BENCH_STOPPED ||
      count_state(w, H3C_CONN_CONNECTING) > 0)
    return; /* stopped: closing connections at the end settles nothing */
  w->settled = true;
  bench_shared *sh = w->sh;
  atomic_fetch_add(&sh->ready, count_state(w, H3C_CONN_READY));
  if (atomic_fetch_add(&sh->settled, 1) + 1 < sh->nworkers)
    return;
  if (atomic_load(&sh->ready) == 0) {
    warnx("no connection could be established");
    bench_stop_all(sh);
    return;
  }
  atomic_store(&sh->t_run, clock_now_ns());
  atomic_store(&sh->started, true);
  wake_all(sh);
}

static void begin_run(bench_worker *w) {
  if (w->phase != BENCH_CONNECTING)
    return;
  if (count_state(w, H3C_CONN_READY) == 0) {
    stop_local(w); /* its connections failed: the others carry the run */
    return;
  }
  w->phase = BENCH_RUNNING;
  uint64_t t_run = atomic_load(&w->sh->t_run);
  w->t.t_last = t_run;
  if (w->opt->duration > 0) {
    /* Every worker's window ends at the same instant, t_run + D. */
    double left = w->opt->duration - clock_ns_to_s(clock_now_ns() - t_run);
    ev_timer_set(&w->duration, left > 1e-6 ? left : 1e-6, 0.);
    ev_timer_start(w->loop, &w->duration);
  }
  if (w->opt->rate > 0)
    ev_timer_again(w->loop, &w->tick);
  for (size_t i = 0; i < w->nconns; i++)
    if (w->conns[i] && h3c_conn_state_get(w->conns[i]) == H3C_CONN_READY)
      h3c_conn_kick(w->conns[i]);
}

/* --rate: lets every connection start what has become due. The period is
 * the gap between two of a connection's requests, at least 50 us (libev
 * sleeps in whole milliseconds anyway when nothing else happens). */
static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents) {
  (void)loop;
  (void)revents;
  bench_worker *w = t->data;
  if (w->phase != BENCH_RUNNING)
    return;
  uint64_t now = clock_now_ns();
  for (size_t i = 0; i < w->nconns; i++)
    if (w->conns[i] && h3c_conn_state_get(w->conns[i]) == H3C_CONN_READY &&
        due_ns(w, w->first + i, w->started[i]) <= now)
      h3c_conn_kick(w->conns[i]);
}

static void wake_cb(struct ev_loop *loop, ev_async *a, int revents) {
  (void)loop;
  (void)revents;
  bench_worker *w = a->data;
  if (atomic_load(&w->sh->stopping))
    stop_local(w);
  else if (atomic_load(&w->sh->started))
    begin_run(w);
}

static void hook_established(void *user, h3c_conn *c) {
  (void)c;
  maybe_settle(user);
}

/* Replaces a connection the server closed during the run (GOAWAY, a
 * requests-per-connection limit) so the offered load stays the same. Only
 * connections that had been established are replaced: a server refusing
 * handshakes is not hammered. */
static bool replace_conn(bench_worker *w, h3c_conn *old) {
  unsigned i = h3c_conn_index(old);
  char err[256];
  h3c_conn *c = h3c_conn_new(&w->x, &w->tmpl.u, (struct sockaddr *)&w->sh->addr,
                             w->sh->addr_len, i, err, sizeof(err));
  if (c == NULL) {
    warnx("connection %u: %s", i, err);
    return false;
  }
  w->retired =
      h3c_xrealloc(w->retired, (w->nretired + 1) * sizeof(*w->retired));
  w->retired[w->nretired++] = old;
  w->conns[i - w->first] = c;
  w->t.reconnects++;
  h3c_conn_set_fail_fast(c, true);
  return true;
}

static void hook_closed(void *user, h3c_conn *c) {
  bench_worker *w = user;
  if (w->phase == BENCH_RUNNING && h3c_conn_graceful(c) && replace_conn(w, c))
    return;
  if (w->phase != BENCH_STOPPED) {
    char what[64];
    snprintf(what, sizeof(what), "connection %u closed", h3c_conn_index(c));
    warn_limited(w->sh, what, h3c_conn_error(c));
  }
  maybe_settle(w);
  if (w->phase == BENCH_RUNNING && count_state(w, H3C_CONN_READY) == 0 &&
      count_state(w, H3C_CONN_CONNECTING) == 0)
    stop_local(w);
}

static void duration_cb(struct ev_loop *loop, ev_timer *t, int revents) {
  (void)loop;
  (void)revents;
  bench_worker *w = t->data;
  /* -D: the window is exactly the duration; in-flight ones are dropped. */
  w->t.t_last = clock_now_ns();
  stop_local(w);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *t, int revents) {
  (void)loop;
  (void)revents;
  bench_worker *w = t->data;
  if (!atomic_exchange(&w->sh->deadline_hit, true))
    warnx("deadline of %g s reached", w->opt->s.timeout);
  bench_stop_all(w->sh);
}

static void init_ctx(bench_worker *w) {
  const bench_opts *o = w->opt;
  char err[256];
  const char *uerr = NULL;
  if (h3c_tmpl_init(&w->tmpl, o->url, o->s.method ? o->s.method : "GET",
                    &o->s.headers, NULL, "h3q-bench/0.1", &uerr) != 0)
    h3c_usage_error("%s: %s", o->url, uerr);
  w->loop = ev_loop_new(EVFLAG_AUTO);
  if (w->loop == NULL)
    h3c_usage_error("cannot create an event loop");
  if (h3c_ctx_init(&w->x, w->loop, &o->s.tls, err, sizeof(err)) != 0)
    h3c_usage_error("%s", err);
  w->x.parallel = (unsigned)o->streams;
  w->x.hooks =
      (h3c_hooks){hook_next, hook_done, NULL, hook_established, hook_closed, w};
}

bench_worker *bench_worker_new(bench_shared *sh, unsigned id, size_t first,
                               size_t n) {
  bench_worker *w = h3c_xcalloc(1, sizeof(*w));
  w->sh = sh;
  w->opt = sh->opt;
  w->id = id;
  w->first = first;
  w->nconns = n;
  bench_lat_init(&w->t.lat);
  init_ctx(w);
  size_t nreq = n * (size_t)w->opt->streams;
  w->pool = h3c_xcalloc(nreq, sizeof(*w->pool));
  w->free_reqs = h3c_xcalloc(nreq, sizeof(*w->free_reqs));
  for (size_t i = 0; i < nreq; i++)
    w->free_reqs[w->nfree++] = &w->pool[i];
  w->conns = h3c_xcalloc(n, sizeof(*w->conns));
  ev_init(&w->deadline, deadline_cb);
  w->deadline.data = w;
  ev_init(&w->duration, duration_cb);
  w->duration.data = w;
  w->started = h3c_xcalloc(n, sizeof(*w->started));
  ev_init(&w->tick, tick_cb);
  w->tick.data = w;
  double gap = w->opt->rate > 0 ? (double)w->opt->conns / w->opt->rate : 0;
  w->tick.repeat = gap > 50e-6 ? gap : 50e-6;
  ev_async_init(&w->wake, wake_cb);
  w->wake.data = w;
  ev_async_start(w->loop, &w->wake);
  return w;
}

/* Opens every connection of w. Returns 0, or -1 after a message. */
static int connect_all(bench_worker *w) {
  char err[256];
  for (size_t i = 0; i < w->nconns; i++) {
    w->conns[i] = h3c_conn_new(&w->x, &w->tmpl.u,
                               (struct sockaddr *)&w->sh->addr, w->sh->addr_len,
                               (unsigned)(w->first + i), err, sizeof(err));
    if (w->conns[i] == NULL) {
      warnx("connection %zu: %s", w->first + i, err);
      return -1;
    }
  }
  return 0;
}

static void close_all(bench_worker *w) {
  w->phase = BENCH_STOPPED;
  h3c_conns_close(w->conns, w->nconns, "benchmark finished", H3C_CLOSE_WAIT_S);
  for (size_t i = 0; i < w->nconns; i++) {
    h3c_conn_free(w->conns[i]);
    w->conns[i] = NULL;
  }
  for (size_t i = 0; i < w->nretired; i++)
    h3c_conn_free(w->retired[i]);
  w->nretired = 0;
}

void bench_worker_run(bench_worker *w) {
  double timeout = w->opt->s.timeout;
  if (timeout > 0) {
    w->deadline.repeat = timeout;
    ev_timer_again(w->loop, &w->deadline);
  }
  if (connect_all(w) == 0)
    ev_run(w->loop, 0);
  else
    bench_stop_all(w->sh);
  close_all(w);
}

void *bench_worker_thread(void *w) {
  bench_worker_run(w);
  return NULL;
}

void bench_worker_add(const bench_worker *w, bench_totals *t) {
  t->ok += w->t.ok;
  t->failed += w->t.failed;
  t->body_bytes += w->t.body_bytes;
  t->reconnects += w->t.reconnects;
  if (w->t.t_last > t->t_last)
    t->t_last = w->t.t_last;
  bench_lat_merge(&t->lat, &w->t.lat);
}

void bench_worker_free(bench_worker *w) {
  if (w == NULL)
    return;
  ev_async_stop(w->loop, &w->wake);
  ev_timer_stop(w->loop, &w->deadline);
  ev_timer_stop(w->loop, &w->duration);
  ev_timer_stop(w->loop, &w->tick);
  free(w->started);
  free(w->retired);
  free(w->conns);
  h3c_ctx_free(&w->x);
  h3c_tmpl_free(&w->tmpl);
  ev_loop_destroy(w->loop);
  free(w->pool);
  free(w->free_reqs);
  free(w);
}
