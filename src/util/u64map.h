/* Open-addressing hash map from uint64_t keys to non-NULL pointers
 * (linear probing, backward-shift deletion: no tombstones). */
#ifndef H3Q_UTIL_U64MAP_H
#define H3Q_UTIL_U64MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct u64map_slot {
  uint64_t key;
  void *value; /* NULL = empty */
} u64map_slot;

typedef struct u64map {
  u64map_slot *slots;
  size_t cap; /* power of two, or 0 */
  size_t len;
} u64map;

void *u64map_get(const u64map *m, uint64_t key);
/* Inserts or replaces. Returns 0, or -1 when out of memory. */
int u64map_put(u64map *m, uint64_t key, void *value);
/* Removes key; returns its value or NULL. */
void *u64map_del(u64map *m, uint64_t key);
void u64map_free(u64map *m);

#endif
