/* Unit tests for h3q-bench's latency histogram (apps/client/common): bucket
 * bounds, percentiles within the promised 0.8%, exact max and mean, and
 * merging the histograms of several threads. */
#include "bench_stats.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static bench_lat a, b, whole;

/* Every value lands in a bucket whose bounds contain it. */
static void test_buckets_contain_their_values(void) {
  uint64_t v = 1;
  int bad = 0;
  for (int i = 0; i < 2000; i++, v = v + v / 7 + 1) {
    uint32_t k = bench_lat_bucket(v);
    if (k + 1 >= BENCH_LAT_BUCKETS)
      break;
    if (bench_lat_bucket_low(k) > v || bench_lat_bucket_low(k + 1) <= v)
      bad++;
  }
  CHECK(bad == 0);
  CHECK(bench_lat_bucket(0) == 0 && bench_lat_bucket(127) == 127);
  CHECK(bench_lat_bucket(128) == 128);
  CHECK(bench_lat_bucket(UINT64_MAX) == BENCH_LAT_BUCKETS - 1);
}

static double rel_err(double got, double want) {
  return fabs(got - want) / want;
}

/* 1..100000 us: the true p-th percentile (nearest rank) is p * 1000 us. */
static void test_percentiles_mean_max(void) {
  bench_lat_init(&a);
  for (uint64_t us = 100000; us >= 1; us--)
    bench_lat_add_ns(&a, us * 1000);
  CHECK(a.n == 100000);
  CHECK(rel_err(bench_lat_pct(&a, 50), 50.0) < 0.008);
  CHECK(rel_err(bench_lat_pct(&a, 90), 90.0) < 0.008);
  CHECK(rel_err(bench_lat_pct(&a, 99), 99.0) < 0.008);
  CHECK(bench_lat_pct(&a, 100) == 100.0); /* exact max */
  CHECK(fabs(bench_lat_mean(&a) - 50.0005) < 1e-9);
  CHECK(bench_lat_pct(&a, 0) >= 0.001 && bench_lat_pct(&a, 0) < 0.00101);
}

static void test_empty_and_single(void) {
  bench_lat_init(&b);
  CHECK(bench_lat_pct(&b, 99) == 0 && bench_lat_mean(&b) == 0);
  bench_lat_add_ns(&b, 1234567);
  /* One sample: every percentile is clamped to it. */
  CHECK(bench_lat_pct(&b, 1) == 1.234567 && bench_lat_pct(&b, 99) == 1.234567);
}

/* Two threads' halves merge into what one histogram of all would say. */
static void test_merge(void) {
  bench_lat_init(&a);
  bench_lat_init(&b);
  bench_lat_init(&whole);
  srand(7);
  for (int i = 0; i < 50000; i++) {
    uint64_t ns = (uint64_t)rand() % 50000000u + 1;
    bench_lat_add_ns(i % 2 ? &a : &b, ns);
    bench_lat_add_ns(&whole, ns);
  }
  bench_lat_merge(&a, &b);
  CHECK(a.n == whole.n && a.sum_ns == whole.sum_ns);
  CHECK(a.min_ns == whole.min_ns && a.max_ns == whole.max_ns);
  CHECK(bench_lat_pct(&a, 50) == bench_lat_pct(&whole, 50));
  CHECK(bench_lat_pct(&a, 99) == bench_lat_pct(&whole, 99));
}

int main(void) {
  test_buckets_contain_their_values();
  test_percentiles_mean_max();
  test_empty_and_single();
  test_merge();
  return check_report("test_bench_stats");
}
