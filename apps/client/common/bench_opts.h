/* h3q-bench's command line. */
#ifndef BENCH_OPTS_H
#define BENCH_OPTS_H

#include "h3c_opts.h"

#include <stdbool.h>
#include <stdint.h>

#define BENCH_MAX_THREADS 64

typedef struct bench_opts {
  h3c_shared_opts s;
  uint64_t conns;    /* -c */
  uint64_t streams;  /* -s: concurrent requests per connection */
  uint64_t requests; /* -n; 0 with -D */
  double duration;   /* -D seconds; 0 with -n */
  uint64_t threads;  /* -t: event-loop threads, 1..conns */
  double rate;       /* -r: requests per second in all; 0: closed loop */
  bool json;         /* --json */
  const char *url;
} bench_opts;

/* Parses argv into o; exits 0 after -h, 2 on usage errors. */
void bench_opts_parse(bench_opts *o, int argc, char **argv);

#endif
