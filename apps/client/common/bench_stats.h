/* Latency samples and percentiles for h3q-bench. Samples are kept exactly
 * (4 bytes each) and sorted once at the end. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stddef.h>

typedef struct bench_lat {
  float *ms;
  size_t n;
  size_t cap;
  int sorted;
} bench_lat;

void bench_lat_add(bench_lat *l, double ms);
/* The p-th percentile (0..100, nearest rank); 0 when empty. */
double bench_lat_pct(bench_lat *l, double p);
void bench_lat_free(bench_lat *l);

#endif
