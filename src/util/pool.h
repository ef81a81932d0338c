/* A bounded free list of same-size heap objects, so that hot objects (one
 * per request) are reused instead of going through malloc and free.
 *
 * The pool never allocates: callers malloc when pool_take returns NULL and
 * offer objects back with pool_give, which refuses (the caller frees) once
 * max objects are held or after pool_close. Objects held by the pool are
 * poisoned for AddressSanitizer, so a use after "free" is still reported
 * in sanitizer builds. Not thread-safe: one pool per loop thread. */
#ifndef H3Q_UTIL_POOL_H
#define H3Q_UTIL_POOL_H

#include <stdbool.h>
#include <stddef.h>

/* 1 in AddressSanitizer builds: pools poison what they hold, and callers
 * may choose to keep less in them (so freed memory stays detectable). */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_SANITIZED 1
#endif
#endif
#ifndef POOL_SANITIZED
#define POOL_SANITIZED 0
#endif

typedef struct pool {
  void *head;   /* held objects, linked through their first word */
  size_t count; /* objects held */
  size_t max;   /* pool_give refuses beyond this */
  size_t size;  /* object size in bytes (>= sizeof(void *)) */
  bool closed;  /* after pool_close: holds nothing, refuses everything */
} pool;

/* Sets up an empty pool of objects of size bytes, holding at most max. */
void pool_init(pool *p, size_t size, size_t max);

/* A held object (its bytes are unspecified: the caller resets them), or
 * NULL when the pool is empty. */
void *pool_take(pool *p);

/* Offers obj (from malloc, size bytes) back. true: the pool holds it and
 * the caller must not touch it; false: the pool is full or closed and the
 * caller still owns obj (and frees it). */
bool pool_give(pool *p, void *obj);

/* Hands every held object to release (free when NULL); the pool stays
 * usable. */
void pool_drain(pool *p, void (*release)(void *obj));

/* pool_drain, then refuses every later pool_give (objects still out when
 * the owner goes away are freed by whoever holds them). */
void pool_close(pool *p, void (*release)(void *obj));

#endif
