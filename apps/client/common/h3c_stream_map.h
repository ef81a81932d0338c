/* Stream id -> request map for one connection (quiche's C API has no
 * per-stream user pointer). Open addressing with linear probing and
 * backward-shift deletion: no tombstones, no per-insert allocation. */
#ifndef H3C_STREAM_MAP_H
#define H3C_STREAM_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct h3c_stream_map {
  uint64_t *keys; /* stream id + 1; 0 marks an empty slot */
  void **vals;
  size_t cap; /* power of two */
  size_t count;
} h3c_stream_map;

void h3c_map_init(h3c_stream_map *m, size_t expected);
void h3c_map_free(h3c_stream_map *m);
void h3c_map_put(h3c_stream_map *m, uint64_t id, void *val);
void *h3c_map_get(const h3c_stream_map *m, uint64_t id);
void h3c_map_del(h3c_stream_map *m, uint64_t id);
/* Any stored value (for draining the map), or NULL when empty. */
void *h3c_map_any(const h3c_stream_map *m);

#endif
