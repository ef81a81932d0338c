/* h3q-bench's result: one JSON object or a human-readable summary. */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include "bench_stats.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct bench_result {
  const char *url;
  uint64_t conns;
  uint64_t streams;
  uint64_t threads;
  double rate; /* offered requests/s; 0 for the closed loop */
  uint64_t ok;
  uint64_t failed;
  uint64_t body_bytes;  /* of successful responses */
  double seconds;       /* all connections up -> last counted response */
  double connect_ms;    /* start -> all connections up */
  const bench_lat *lat; /* successful requests' latencies */
} bench_result;

void bench_report_print(const bench_result *r, bool json);

#endif
