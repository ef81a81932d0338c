/* Open-addressing hash map from uint64_t keys to non-NULL pointers
 * (linear probing, backward-shift deletion: no tombstones). A zeroed
 * u64map is empty and ready; it allocates on the first put.
 *
 * Walking: the entries are the slots[0..cap) whose value is non-NULL.
 * Deleting the entry in slots[i] may move an entry not yet visited into
 * slot i, never into a slot the walk has passed, so a walk that deletes
 * checks slot i again before moving on and misses nothing (an entry it
 * kept may come round twice):
 *   for (i = 0; i < m.cap; i++)
 *     while (m.slots[i].value && should_go(m.slots[i]))
 *       u64map_del(&m, m.slots[i].key);
 * Putting during a walk may grow the table and reorder it. */
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
