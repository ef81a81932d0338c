/* Unit tests for util/u64map: lookups, replacement, growth, deletion, and
 * the walk-while-deleting idiom its header documents (h3q-client fails
 * requests that way, src/quic prunes streams that way). */
#include "check.h"
#include "util/u64map.h"

#include <stdint.h>

#define KEYS 600

static uint64_t keys[KEYS];
static int values[KEYS];

/* Stream-id-like keys (multiples of 4) or scattered ones. */
static void make_keys(int scattered) {
  uint64_t x = 0x1234567u;
  for (int i = 0; i < KEYS; i++) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    keys[i] = scattered ? x : (uint64_t)i * 4;
  }
}

static void test_empty(void) {
  u64map m = {0};
  CHECK(u64map_get(&m, 0) == NULL);
  CHECK(u64map_del(&m, 4) == NULL);
  u64map_free(&m);
  CHECK(m.cap == 0 && m.len == 0 && m.slots == NULL);
}

static void test_put_get_del(int scattered) {
  make_keys(scattered);
  u64map m = {0};
  for (int i = 0; i < KEYS; i++)
    CHECK(u64map_put(&m, keys[i], &values[i]) == 0);
  CHECK(m.len == KEYS && m.len * 4 <= m.cap * 3);
  for (int i = 0; i < KEYS; i++)
    CHECK(u64map_get(&m, keys[i]) == &values[i]);
  /* Replacing keeps the count. */
  CHECK(u64map_put(&m, keys[7], &values[8]) == 0);
  CHECK(m.len == KEYS && u64map_get(&m, keys[7]) == &values[8]);
  CHECK(u64map_put(&m, keys[7], &values[7]) == 0);
  for (int i = 0; i < KEYS; i += 2)
    CHECK(u64map_del(&m, keys[i]) == &values[i]);
  CHECK(m.len == KEYS / 2);
  for (int i = 0; i < KEYS; i++)
    CHECK(u64map_get(&m, keys[i]) == (i % 2 ? &values[i] : NULL));
  CHECK(u64map_del(&m, keys[0]) == NULL);
  u64map_free(&m);
}

/* Deletes every third entry with the documented walk; none may be missed
 * and no other entry may be lost. */
static void test_walk_deleting(int scattered) {
  make_keys(scattered);
  u64map m = {0};
  for (int i = 0; i < KEYS; i++)
    u64map_put(&m, keys[i], &values[i]);
  size_t steps = 0;
  for (size_t i = 0; i < m.cap; i++) {
    while (m.slots[i].value && ((int *)m.slots[i].value - values) % 3 == 0 &&
           steps < 10 * KEYS) {
      u64map_del(&m, m.slots[i].key);
      steps++;
    }
  }
  CHECK(steps == KEYS / 3);
  CHECK(m.len == KEYS - KEYS / 3);
  for (int i = 0; i < KEYS; i++)
    CHECK(u64map_get(&m, keys[i]) == (i % 3 ? &values[i] : NULL));

  /* Draining: deleting every entry in one walk empties the map. */
  for (size_t i = 0; i < m.cap; i++)
    while (m.slots[i].value)
      u64map_del(&m, m.slots[i].key);
  CHECK(m.len == 0);
  u64map_free(&m);
}

int main(void) {
  test_empty();
  for (int scattered = 0; scattered <= 1; scattered++) {
    test_put_get_del(scattered);
    test_walk_deleting(scattered);
  }
  return check_report("test_u64map");
}
