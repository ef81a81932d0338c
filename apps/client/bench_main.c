/* h3q-bench: a closed-loop HTTP/3 load generator. -c connections each keep
 * -s requests in flight; requests start only once every connection is
 * established, so the measured window excludes handshakes. With -t the
 * connections are spread over threads (bench_worker.h), each with its own
 * sockets and loop; their counts and latency histograms are merged. */
#include "bench_opts.h"
#include "bench_report.h"
#include "bench_worker.h"
#include "h3c_args.h"
#include "h3c_url.h"
#include "util/clock.h"

#include <err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void resolve(bench_shared *sh) {
  h3c_url u;
  const char *uerr = NULL;
  char err[256];
  if (h3c_url_parse(sh->opt->url, &u, &uerr) != 0)
    h3c_usage_error("%s: %s", sh->opt->url, uerr);
  int rc =
      h3c_resolve(u.host, u.port, &sh->addr, &sh->addr_len, err, sizeof(err));
  h3c_url_free(&u);
  if (rc != 0) {
    warnx("%s", err);
    exit(1);
  }
}

/* Worker k gets connections [k C / T, (k + 1) C / T). */
static void create_workers(bench_shared *sh) {
  unsigned nt = (unsigned)sh->opt->threads;
  size_t nc = (size_t)sh->opt->conns;
  sh->workers = h3c_xcalloc(nt, sizeof(*sh->workers));
  for (unsigned k = 0; k < nt; k++) {
    size_t first = k * nc / nt, end = (k + 1) * nc / nt;
    sh->workers[k] = bench_worker_new(sh, k, first, end - first);
  }
  sh->nworkers = nt; /* every loop exists before any thread may wake it */
}

/* Worker 0 runs on this thread, the others on their own. */
static void run_workers(bench_shared *sh) {
  pthread_t *th = h3c_xcalloc(sh->nworkers, sizeof(*th));
  unsigned started = 1;
  for (unsigned k = 1; k < sh->nworkers; k++, started++) {
    if (pthread_create(&th[k], NULL, bench_worker_thread, sh->workers[k])) {
      warnx("cannot start thread %u", k);
      bench_stop_all(sh);
      break;
    }
  }
  bench_worker_run(sh->workers[0]);
  for (unsigned k = 1; k < started; k++)
    pthread_join(th[k], NULL);
  free(th);
}

int main(int argc, char **argv) {
  static bench_opts opt;
  static bench_shared sh;
  static bench_totals tot;
  bench_opts_parse(&opt, argc, argv);
  h3c_set_verbosity(opt.s.verbose);
  sh.opt = &opt;
  resolve(&sh);
  create_workers(&sh);
  sh.t0 = clock_now_ns();
  run_workers(&sh);
  bench_lat_init(&tot.lat);
  for (unsigned k = 0; k < sh.nworkers; k++) {
    bench_worker_add(sh.workers[k], &tot);
    bench_worker_free(sh.workers[k]);
  }
  free(sh.workers);
  /* -n: requests that never finished (deadline, lost connections) failed. */
  if (opt.requests && tot.ok + tot.failed < opt.requests)
    tot.failed = opt.requests - tot.ok;
  uint64_t t_run = atomic_load(&sh.started) ? atomic_load(&sh.t_run) : 0;
  bench_result res = {
      .url = opt.url,
      .conns = opt.conns,
      .streams = opt.streams,
      .threads = opt.threads,
      .rate = opt.rate,
      .ok = tot.ok,
      .failed = tot.failed,
      .body_bytes = tot.body_bytes,
      .seconds =
          t_run && tot.t_last > t_run ? clock_ns_to_s(tot.t_last - t_run) : 0,
      .connect_ms = t_run ? clock_ns_to_ms(t_run - sh.t0) : 0,
      .lat = &tot.lat,
  };
  if (tot.reconnects)
    warnx("%llu connections were replaced during the run",
          (unsigned long long)tot.reconnects);
  bench_report_print(&res, opt.json);
  h3c_kvlist_free(&opt.s.headers);
  return tot.failed > 0 || tot.ok == 0 ? 1 : 0;
}
