#include "bench_stats.h"

#include "h3c_args.h"

#include <math.h>
#include <stdlib.h>

void bench_lat_add(bench_lat *l, double ms) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 4096;
    l->ms = h3c_xrealloc(l->ms, l->cap * sizeof(*l->ms));
  }
  l->ms[l->n++] = (float)ms;
  l->sorted = 0;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

double bench_lat_pct(bench_lat *l, double p) {
  if (l->n == 0)
    return 0;
  if (!l->sorted) {
    qsort(l->ms, l->n, sizeof(*l->ms), cmp_float);
    l->sorted = 1;
  }
  double rank = ceil(p / 100.0 * (double)l->n);
  size_t i = rank < 1 ? 0 : (size_t)rank - 1;
  return l->ms[i < l->n ? i : l->n - 1];
}

void bench_lat_free(bench_lat *l) {
  free(l->ms);
  l->ms = NULL;
  l->n = l->cap = 0;
}
