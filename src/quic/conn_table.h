/* Connections keyed by connection ID (the DCID peers put on the wire),
 * hashed with a per-server random SipHash key so peers cannot aim
 * collisions at one bucket. Chained buckets; grows at load factor 1. */
#ifndef H3Q_QUIC_CONN_TABLE_H
#define H3Q_QUIC_CONN_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define CID_MAX_LEN 20

typedef struct conn_table_entry {
  struct conn_table_entry *next;
  uint8_t cid[CID_MAX_LEN];
  size_t cid_len;
  void *value;
} conn_table_entry;

typedef struct conn_table {
  conn_table_entry **buckets;
  size_t cap; /* power of two */
  size_t len;
  uint8_t key[16];
} conn_table;

int conn_table_init(conn_table *t);
void conn_table_free(conn_table *t);
void *conn_table_get(const conn_table *t, const uint8_t *cid, size_t len);
/* Returns 0, -1 when out of memory or the cid is too long. */
int conn_table_put(conn_table *t, const uint8_t *cid, size_t len, void *value);
void conn_table_del(conn_table *t, const uint8_t *cid, size_t len);

#endif
