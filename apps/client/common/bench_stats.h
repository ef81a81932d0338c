/* Latency histogram for h3q-bench. Buckets are log-linear (HDR-style):
 * exact below 128 ns, then 128 buckets per power of two, so a reported
 * percentile is within 0.8% of the true sample. Memory is fixed (about
 * 35 KB) however long the run, and histograms of several threads merge by
 * adding counts. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdint.h>

#define BENCH_LAT_SUB_BITS 7
/* Values up to 2^40 ns (about 18 minutes); larger ones land in the last
 * bucket (max stays exact). */
#define BENCH_LAT_MAX_BITS 40
#define BENCH_LAT_BUCKETS                                                      \
  ((BENCH_LAT_MAX_BITS - BENCH_LAT_SUB_BITS + 2) << BENCH_LAT_SUB_BITS)

typedef struct bench_lat {
  uint64_t n;
  uint64_t min_ns, max_ns; /* exact; min_ns valid when n > 0 */
  uint64_t sum_ns;         /* exact, for the mean */
  uint64_t counts[BENCH_LAT_BUCKETS];
} bench_lat;

void bench_lat_init(bench_lat *l);
void bench_lat_add_ns(bench_lat *l, uint64_t ns);
/* Adds src's samples to dst. */
void bench_lat_merge(bench_lat *dst, const bench_lat *src);
/* The p-th percentile (0..100, nearest rank) in ms: the middle of the
 * sample's bucket, within [min, max]; p = 100 gives the exact max. 0 when
 * empty. */
double bench_lat_pct(const bench_lat *l, double p);

/* The exact mean in ms; 0 when empty. */
double bench_lat_mean(const bench_lat *l);

/* Bucket of a value, and the smallest value of a bucket; exposed for
 * tests. */
uint32_t bench_lat_bucket(uint64_t ns);
uint64_t bench_lat_bucket_low(uint32_t i);

#endif
