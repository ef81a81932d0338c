/* Request bodies (--data-file), streamed and never held in memory whole.
 * A regular file is read with pread at each request's own offset, so any
 * number of requests can upload it concurrently from one descriptor. A pipe
 * (stdin) can be read only once: it is streamed as it arrives for a single
 * request, or spooled to an unlinked temporary file when several requests
 * need it. */
#ifndef H3C_BODY_SRC_H
#define H3C_BODY_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

typedef enum h3c_src_kind {
  H3C_SRC_FILE, /* seekable: size known, content-length sent */
  H3C_SRC_PIPE, /* streamed once, length unknown */
} h3c_src_kind;

/* What to upload; shared by all requests that send it. */
typedef struct h3c_body_spec {
  h3c_src_kind kind;
  int fd;
  uint64_t base; /* FILE: offset of the first body byte */
  uint64_t size; /* FILE: body length */
  bool claimed;  /* PIPE: already given to a request */
} h3c_body_spec;

/* Opens path ('-' = stdin). With reusable set, a pipe is spooled to a
 * temporary file first. Returns 0 or -1 with a message in err. */
int h3c_body_spec_open(h3c_body_spec *s, const char *path, bool reusable,
                       char *err, size_t errlen);
void h3c_body_spec_close(h3c_body_spec *s);

#define H3C_PIPE_BUF (64 * 1024)

/* One request's progress through its body. */
typedef struct h3c_body_src {
  const h3c_body_spec *spec;
  uint64_t off; /* bytes the stream accepted so far */
  uint8_t *buf; /* PIPE: bytes read from the pipe, not yet accepted */
  size_t pos;
  size_t len;
  bool eof;    /* PIPE: read() returned 0 */
  ev_io watch; /* PIPE: armed while waiting for input */
} h3c_body_src;

typedef enum h3c_chunk_rc {
  H3C_CHUNK_OK,   /* p, n and fin describe the next bytes to send */
  H3C_CHUNK_WAIT, /* PIPE: buffer empty; read more when readable */
  H3C_CHUNK_ERR,  /* read error, message in err */
} h3c_chunk_rc;

/* Returns 0, or -1 when a pipe spec was already claimed. */
int h3c_body_src_init(h3c_body_src *s, h3c_body_spec *spec);
void h3c_body_src_free(h3c_body_src *s, struct ev_loop *loop);

/* Next chunk of at most max bytes; FILE chunks are read into scratch. */
h3c_chunk_rc h3c_body_src_peek(h3c_body_src *s, uint8_t *scratch, size_t max,
                               const uint8_t **p, size_t *n, bool *fin,
                               char *err, size_t errlen);

/* Marks n bytes of the last chunk as accepted by the stream. */
void h3c_body_src_consume(h3c_body_src *s, size_t n);

/* PIPE: one read() after readiness. Returns 0 (data or EOF or nothing
 * yet) or -1 with a message in err. */
int h3c_body_src_fill(h3c_body_src *s, char *err, size_t errlen);

#endif
