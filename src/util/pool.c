#include "util/pool.h"

#include <stdlib.h>
#include <string.h>

#if POOL_SANITIZED
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

void pool_init(pool *p, size_t size, size_t max) {
  memset(p, 0, sizeof *p);
  p->size = size < sizeof(void *) ? sizeof(void *) : size;
  p->max = max;
}

void *pool_take(pool *p) {
  void *obj = p->head;
  if (!obj)
    return NULL;
  POOL_UNPOISON(obj, p->size);
  memcpy(&p->head, obj, sizeof(void *));
  p->count--;
  return obj;
}

bool pool_give(pool *p, void *obj) {
  if (!obj || p->closed || p->count >= p->max)
    return false;
  memcpy(obj, &p->head, sizeof(void *));
  POOL_POISON(obj, p->size);
  p->head = obj;
  p->count++;
  return true;
}

void pool_drain(pool *p, void (*release)(void *obj)) {
  /* Bounded by count: each step removes one held object. */
  while (p->count) {
    void *obj = pool_take(p);
    if (release)
      release(obj);
    else
      free(obj);
  }
}

void pool_close(pool *p, void (*release)(void *obj)) {
  pool_drain(p, release);
  p->closed = true;
}
