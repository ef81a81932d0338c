#include "h3c_stream_map.h"

#include "h3c_args.h"

#include <stdlib.h>

static size_t slot_of(const h3c_stream_map *m, uint64_t id) {
  /* Client stream ids step by 4; mix so they spread over the table. */
  return (size_t)(((id >> 2) * 0x9E3779B97F4A7C15ull) >> 17) & (m->cap - 1);
}

void h3c_map_init(h3c_stream_map *m, size_t expected) {
  m->cap = 16;
  while (m->cap < expected * 2)
    m->cap *= 2;
  m->keys = h3c_xcalloc(m->cap, sizeof(*m->keys));
  m->vals = h3c_xcalloc(m->cap, sizeof(*m->vals));
  m->count = 0;
}

void h3c_map_free(h3c_stream_map *m) {
  free(m->keys);
  free(m->vals);
  m->keys = NULL;
  m->vals = NULL;
  m->cap = m->count = 0;
}

static void grow(h3c_stream_map *m) {
  h3c_stream_map old = *m;
  h3c_map_init(m, old.cap);
  for (size_t i = 0; i < old.cap; i++)
    if (old.keys[i])
      h3c_map_put(m, old.keys[i] - 1, old.vals[i]);
  h3c_map_free(&old);
}

void h3c_map_put(h3c_stream_map *m, uint64_t id, void *val) {
  if ((m->count + 1) * 2 > m->cap)
    grow(m);
  size_t i = slot_of(m, id);
  while (m->keys[i] && m->keys[i] != id + 1)
    i = (i + 1) & (m->cap - 1);
  if (!m->keys[i])
    m->count++;
  m->keys[i] = id + 1;
  m->vals[i] = val;
}

void *h3c_map_get(const h3c_stream_map *m, uint64_t id) {
  size_t i = slot_of(m, id);
  while (m->keys[i]) {
    if (m->keys[i] == id + 1)
      return m->vals[i];
    i = (i + 1) & (m->cap - 1);
  }
  return NULL;
}

void h3c_map_del(h3c_stream_map *m, uint64_t id) {
  size_t mask = m->cap - 1, i = slot_of(m, id);
  while (m->keys[i] && m->keys[i] != id + 1)
    i = (i + 1) & mask;
  if (!m->keys[i])
    return;
  m->count--;
  /* Backward shift: pull later entries of the probe run into the hole. */
  for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
    size_t home = slot_of(m, m->keys[j] - 1);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  }
  m->keys[i] = 0;
  m->vals[i] = NULL;
}

void *h3c_map_any(const h3c_stream_map *m) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i])
      return m->vals[i];
  return NULL;
}
