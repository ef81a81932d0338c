/* h3q-bench's threads. Each worker owns a share of the connections with
 * their sockets, a libev loop, a request pool and its own counters and
 * latency histogram, so the hot path takes no lock. Workers meet only in
 * bench_shared: atomics for the request budget and the start/stop
 * decisions, and an ev_async per worker to wake it for them. */
#ifndef BENCH_WORKER_H
#define BENCH_WORKER_H

#include "bench_opts.h"
#include "bench_stats.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct bench_worker bench_worker;

typedef struct bench_shared {
  const bench_opts *opt;
  struct sockaddr_storage addr; /* the server, resolved once */
  socklen_t addr_len;
  bench_worker **workers;
  unsigned nworkers;
  uint64_t t0;                   /* program start (monotonic ns) */
  atomic_uint settled;           /* workers with no handshake pending */
  atomic_uint_fast64_t ready;    /* connections established when settled */
  atomic_bool started;           /* the measured run began at t_run */
  atomic_uint_fast64_t t_run;    /* written before started is set */
  atomic_bool stopping;          /* every worker is to stop */
  atomic_bool deadline_hit;      /* --timeout fired (warned once) */
  atomic_uint_fast64_t issued;   /* -n budget taken by all workers */
  atomic_uint_fast64_t finished; /* counted completions, for -n */
  atomic_uint errors_shown;      /* caps messages over all threads */
} bench_shared;

/* What a worker measured; bench_worker_add folds workers together. */
typedef struct bench_totals {
  uint64_t ok, failed, body_bytes, reconnects;
  uint64_t t_last; /* last counted response, or the end of -D */
  bench_lat lat;
} bench_totals;

/* Creates worker id for connections [first, first + n) with its own loop
 * and quiche configs. Exits with status 2 on setup errors, like option
 * errors. */
bench_worker *bench_worker_new(bench_shared *sh, unsigned id, size_t first,
                               size_t n);

/* Opens the worker's connections and runs its loop until the run ends;
 * then closes the connections. Call from the thread that is to own it. */
void bench_worker_run(bench_worker *w);
void *bench_worker_thread(void *w);

void bench_worker_add(const bench_worker *w, bench_totals *t);
void bench_worker_free(bench_worker *w);

/* Wakes every worker to stop (safe from any thread). */
void bench_stop_all(bench_shared *sh);

#endif
