#include "util/u64map.h"

#include <stdlib.h>

static size_t slot_of(const u64map *m, uint64_t key) {
  /* Fibonacci hashing spreads QUIC stream ids (multiples of 4). */
  return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (m->cap - 1);
}

void *u64map_get(const u64map *m, uint64_t key) {
  if (m->cap == 0)
    return NULL;
  for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
    if (!m->slots[i].value)
      return NULL;
    if (m->slots[i].key == key)
      return m->slots[i].value;
  }
}

static int grow(u64map *m) {
  size_t old_cap = m->cap;
  u64map_slot *old = m->slots;
  size_t cap = old_cap ? old_cap * 2 : 16;
  u64map_slot *slots = calloc(cap, sizeof *slots);
  if (!slots)
    return -1;
  m->slots = slots;
  m->cap = cap;
  m->len = 0;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].value)
      u64map_put(m, old[i].key, old[i].value);
  free(old);
  return 0;
}

int u64map_put(u64map *m, uint64_t key, void *value) {
  if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0)
    return -1;
  for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
    if (!m->slots[i].value) {
      m->slots[i].key = key;
      m->slots[i].value = value;
      m->len++;
      return 0;
    }
    if (m->slots[i].key == key) {
      m->slots[i].value = value;
      return 0;
    }
  }
}

void *u64map_del(u64map *m, uint64_t key) {
  if (m->cap == 0)
    return NULL;
  size_t mask = m->cap - 1, i = slot_of(m, key);
  while (m->slots[i].value && m->slots[i].key != key)
    i = (i + 1) & mask;
  void *value = m->slots[i].value;
  if (!value)
    return NULL;
  /* Backward shift: move later entries of the run into the hole when their
   * home slot lies at or before it. */
  for (size_t j = (i + 1) & mask; m->slots[j].value; j = (j + 1) & mask) {
    size_t home = slot_of(m, m->slots[j].key);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      m->slots[i] = m->slots[j];
      i = j;
    }
  }
  m->slots[i].value = NULL;
  m->len--;
  return value;
}

void u64map_free(u64map *m) {
  free(m->slots);
  m->slots = NULL;
  m->cap = m->len = 0;
}
