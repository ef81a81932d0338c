/* Unit tests for util/pool: reuse, the bound, draining with a release
 * callback, teardown while objects are still out, and (in sanitizer
 * builds) that held objects are poisoned. */
#include "check.h"
#include "util/pool.h"

#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

typedef struct obj {
  void *link_room; /* the pool links held objects through the first word */
  int payload[16];
} obj;

static int released;

static void count_release(void *o) {
  released++;
  free(o);
}

static void test_reuse(void) {
  pool p;
  pool_init(&p, sizeof(obj), 4);
  CHECK(pool_take(&p) == NULL);
  obj *a = malloc(sizeof *a);
  CHECK(pool_give(&p, a));
  CHECK(p.count == 1);
  obj *b = pool_take(&p);
  CHECK(b == a); /* the same memory comes back */
  CHECK(p.count == 0);
  b->payload[15] = 7; /* usable again (unpoisoned) */
  CHECK(b->payload[15] == 7);
  CHECK(pool_take(&p) == NULL);
  free(b);
  pool_close(&p, NULL);
}

static void test_lifo_order(void) {
  pool p;
  pool_init(&p, sizeof(obj), 4);
  obj *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  CHECK(pool_give(&p, a) && pool_give(&p, b));
  CHECK(pool_take(&p) == b); /* the most recently used: warm in cache */
  CHECK(pool_take(&p) == a);
  free(a);
  free(b);
  pool_close(&p, NULL);
}

static void test_bound(void) {
  pool p;
  pool_init(&p, sizeof(obj), 3);
  obj *o[5];
  int kept = 0;
  for (int i = 0; i < 5; i++) {
    o[i] = malloc(sizeof(obj));
    if (pool_give(&p, o[i]))
      kept++;
    else
      free(o[i]); /* refused: still the caller's */
  }
  CHECK(kept == 3);
  CHECK(p.count == 3);
  released = 0;
  pool_drain(&p, count_release);
  CHECK(released == 3);
  CHECK(p.count == 0 && pool_take(&p) == NULL);
  /* Still usable after a drain. */
  obj *again = malloc(sizeof *again);
  CHECK(pool_give(&p, again));
  pool_close(&p, count_release);
  CHECK(released == 4);
}

static void test_zero_max_keeps_nothing(void) {
  pool p;
  pool_init(&p, sizeof(obj), 0);
  obj *a = malloc(sizeof *a);
  CHECK(!pool_give(&p, a));
  free(a);
  CHECK(!pool_give(&p, NULL));
  pool_close(&p, NULL);
}

/* Objects still out when the owner closes the pool come back later: the
 * pool refuses them and their holders free them (no leak, no reuse). */
static void test_close_with_outstanding(void) {
  pool p;
  pool_init(&p, sizeof(obj), 8);
  obj *held = malloc(sizeof *held), *out1 = malloc(sizeof *out1);
  obj *out2 = malloc(sizeof *out2);
  CHECK(pool_give(&p, held));
  released = 0;
  pool_close(&p, count_release);
  CHECK(released == 1);
  CHECK(p.closed && p.count == 0);
  CHECK(!pool_give(&p, out1));
  CHECK(!pool_give(&p, out2));
  CHECK(pool_take(&p) == NULL);
  free(out1);
  free(out2);
}

static void test_poisoned_while_held(void) {
#ifdef TEST_ASAN
  pool p;
  pool_init(&p, sizeof(obj), 2);
  obj *a = malloc(sizeof *a);
  CHECK(pool_give(&p, a));
  CHECK(__asan_address_is_poisoned(&a->payload[3]));
  CHECK(__asan_address_is_poisoned(a)); /* the link word too */
  obj *b = pool_take(&p);
  CHECK(!__asan_address_is_poisoned(&b->payload[3]));
  free(b);
  pool_close(&p, NULL);
#endif
}

int main(void) {
  test_reuse();
  test_lifo_order();
  test_bound();
  test_zero_max_keeps_nothing();
  test_close_with_outstanding();
  test_poisoned_while_held();
  return check_report("test_pool");
}
