#include "quic/conn_table.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static size_t bucket_of(const conn_table *t, const uint8_t *cid, size_t len) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, cid, len, t->key);
  uint64_t v;
  memcpy(&v, h, sizeof v);
  return (size_t)v & (t->cap - 1);
}

int conn_table_init(conn_table *t) {
  memset(t, 0, sizeof *t);
  if (sodium_init() < 0)
    return -1;
  randombytes_buf(t->key, sizeof t->key);
  t->cap = 64;
  t->buckets = calloc(t->cap, sizeof *t->buckets);
  return t->buckets ? 0 : -1;
}

void conn_table_free(conn_table *t) {
  for (size_t i = 0; i < t->cap; i++) {
    conn_table_entry *e = t->buckets[i];
    while (e) {
      conn_table_entry *next = e->next;
      free(e);
      e = next;
    }
  }
  free(t->buckets);
  t->buckets = NULL;
  t->cap = t->len = 0;
}

static conn_table_entry **find(const conn_table *t, const uint8_t *cid,
                               size_t len) {
  conn_table_entry **p = &t->buckets[bucket_of(t, cid, len)];
  while (*p && ((*p)->cid_len != len || memcmp((*p)->cid, cid, len) != 0))
    p = &(*p)->next;
  return p;
}

void *conn_table_get(const conn_table *t, const uint8_t *cid, size_t len) {
  if (len > CID_MAX_LEN)
    return NULL;
  conn_table_entry *e = *find(t, cid, len);
  return e ? e->value : NULL;
}

static void grow(conn_table *t) {
  size_t cap = t->cap * 2;
  conn_table_entry **buckets = calloc(cap, sizeof *buckets);
  if (!buckets)
    return; /* keep working at a higher load factor */
  conn_table old = *t;
  t->buckets = buckets;
  t->cap = cap;
  for (size_t i = 0; i < old.cap; i++) {
    conn_table_entry *e = old.buckets[i];
    while (e) {
      conn_table_entry *next = e->next;
      size_t b = bucket_of(t, e->cid, e->cid_len);
      e->next = t->buckets[b];
      t->buckets[b] = e;
      e = next;
    }
  }
  free(old.buckets);
}

int conn_table_put(conn_table *t, const uint8_t *cid, size_t len, void *value) {
  if (len > CID_MAX_LEN)
    return -1;
  conn_table_entry **p = find(t, cid, len);
  if (*p) {
    (*p)->value = value;
    return 0;
  }
  conn_table_entry *e = calloc(1, sizeof *e);
  if (!e)
    return -1;
  memcpy(e->cid, cid, len);
  e->cid_len = len;
  e->value = value;
  *p = e;
  if (++t->len > t->cap)
    grow(t);
  return 0;
}

void conn_table_del(conn_table *t, const uint8_t *cid, size_t len) {
  if (len > CID_MAX_LEN)
    return;
  conn_table_entry **p = find(t, cid, len);
  if (!*p)
    return;
  conn_table_entry *e = *p;
  *p = e->next;
  free(e);
  t->len--;
}
