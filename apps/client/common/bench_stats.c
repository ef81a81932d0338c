#include "bench_stats.h"

#include <math.h>
#include <string.h>

#define SUB (UINT64_C(1) << BENCH_LAT_SUB_BITS)

void bench_lat_init(bench_lat *l) {
  memset(l, 0, sizeof(*l));
}

uint32_t bench_lat_bucket(uint64_t ns) {
  if (ns < SUB)
    return (uint32_t)ns;                            /* exact */
  unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* ns in [2^e, 2^e+1) */
  if (e > BENCH_LAT_MAX_BITS)
    return BENCH_LAT_BUCKETS - 1;
  uint64_t mant = ns >> (e - BENCH_LAT_SUB_BITS); /* in [SUB, 2 SUB) */
  uint64_t i = (uint64_t)(e - BENCH_LAT_SUB_BITS + 1) * SUB + (mant - SUB);
  return i < BENCH_LAT_BUCKETS ? (uint32_t)i : BENCH_LAT_BUCKETS - 1;
}

uint64_t bench_lat_bucket_low(uint32_t i) {
  if (i < SUB)
    return i;
  uint64_t octave = i / SUB; /* >= 1 */
  uint64_t mant = SUB + i % SUB;
  return mant << (octave - 1);
}

void bench_lat_add_ns(bench_lat *l, uint64_t ns) {
  if (l->n == 0 || ns < l->min_ns)
    l->min_ns = ns;
  if (ns > l->max_ns)
    l->max_ns = ns;
  l->n++;
  l->sum_ns += ns;
  l->counts[bench_lat_bucket(ns)]++;
}

void bench_lat_merge(bench_lat *dst, const bench_lat *src) {
  if (src->n == 0)
    return;
  if (dst->n == 0 || src->min_ns < dst->min_ns)
    dst->min_ns = src->min_ns;
  if (src->max_ns > dst->max_ns)
    dst->max_ns = src->max_ns;
  dst->n += src->n;
  dst->sum_ns += src->sum_ns;
  for (size_t i = 0; i < BENCH_LAT_BUCKETS; i++)
    dst->counts[i] += src->counts[i];
}

/* The middle of bucket i, kept within the samples seen. */
static uint64_t bucket_value(const bench_lat *l, uint32_t i) {
  uint64_t lo = bench_lat_bucket_low(i);
  uint64_t hi = i + 1 < BENCH_LAT_BUCKETS ? bench_lat_bucket_low(i + 1) : lo;
  uint64_t v = lo + (hi - lo) / 2;
  if (v < l->min_ns)
    v = l->min_ns;
  return v > l->max_ns ? l->max_ns : v;
}

double bench_lat_pct(const bench_lat *l, double p) {
  if (l->n == 0)
    return 0;
  if (p >= 100)
    return (double)l->max_ns / 1e6;
  double r = ceil(p / 100.0 * (double)l->n);
  uint64_t rank = r < 1 ? 1 : (uint64_t)r;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < BENCH_LAT_BUCKETS; i++) {
    seen += l->counts[i];
    if (seen >= rank)
      return (double)bucket_value(l, i) / 1e6;
  }
  return (double)l->max_ns / 1e6;
}

double bench_lat_mean(const bench_lat *l) {
  return l->n ? (double)l->sum_ns / (double)l->n / 1e6 : 0;
}
