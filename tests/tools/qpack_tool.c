/* qpack_tool: drives h3q's QPACK codec from a line protocol on stdin, so
 * that tests can compare it with an independent implementation.
 *
 * Commands, one per line (hex strings may be empty); every reply ends with
 * a line "end", and unknown or malformed commands reply "bad":
 *   decoder MAXCAP MAXBLOCKED  a new decoder; replies "ok"
 *   enc HEX                    encoder-stream bytes for the decoder;
 *                              replies "ok" or "error CODE"
 *   section STREAM LIMIT HEX   decodes a field section; replies one
 *                              "field NAMEHEX VALUEHEX" per field, then
 *                              "result done|blocked|too_large|stopped" or
 *                              "result error CODE"
 *   cancel STREAM              the stream was reset; replies "ok"
 *   instr                      takes the queued decoder instructions;
 *                              replies "instr HEX"
 *   encode NAMEHEX:VALUEHEX .. our encoder; replies "block HEX"
 *   decstream HEX              decoder-stream bytes for our encoder;
 *                              replies "ok" or "error CODE" */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h3/qpack.h"

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes len hex digits at s into out (room for len / 2). */
static int unhex(const char *s, size_t len, uint8_t *out, size_t *n) {
  if (len % 2)
    return -1;
  for (size_t i = 0; i < len; i += 2) {
    int hi = hexval(s[i]), lo = hexval(s[i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i / 2] = (uint8_t)(hi * 16 + lo);
  }
  *n = len / 2;
  return 0;
}

static void puthex(const uint8_t *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    printf("%02x", p[i]);
}

/* Next space-separated token of *line (NULL at the end). */
static char *token(char **line) {
  char *s = *line;
  while (*s == ' ')
    s++;
  if (*s == 0)
    return NULL;
  char *e = s;
  while (*e && *e != ' ')
    e++;
  if (*e)
    *e++ = 0;
  *line = e;
  return s;
}

/* Decodes a hex token (NULL = empty) into a malloc'ed buffer. */
static uint8_t *hex_arg(const char *tok, size_t *n) {
  size_t len = tok ? strlen(tok) : 0;
  uint8_t *b = malloc(len / 2 + 1);
  if (b && unhex(tok ? tok : "", len, b, n) != 0) {
    free(b);
    b = NULL;
  }
  return b;
}

static int print_field(void *user, const uint8_t *name, size_t nlen,
                       const uint8_t *value, size_t vlen) {
  (void)user;
  printf("field ");
  puthex(name, nlen);
  printf(" ");
  puthex(value, vlen);
  printf("\n");
  return 0;
}

static const char *result_name(qpack_result r) {
  switch (r) {
  case QPACK_DONE:
    return "done";
  case QPACK_BLOCKED:
    return "blocked";
  case QPACK_TOO_LARGE:
    return "too_large";
  case QPACK_STOPPED:
    return "stopped";
  case QPACK_ERROR:
    return "error";
  }
  return "?";
}

static void reply_code(uint64_t code) {
  if (code == 0)
    printf("ok\n");
  else
    printf("error 0x%" PRIx64 "\n", code);
}

static int cmd_section(qpack_decoder *d, char *args) {
  char *sid = token(&args), *lim = token(&args);
  if (!sid || !lim)
    return -1;
  size_t n;
  uint8_t *b = hex_arg(token(&args), &n);
  if (!b)
    return -1;
  uint64_t err = 0;
  qpack_result r =
      qpack_decode_section(d, strtoull(sid, NULL, 10), b, n,
                           strtoull(lim, NULL, 10), print_field, NULL, &err);
  printf("result %s", result_name(r));
  if (r == QPACK_ERROR)
    printf(" 0x%" PRIx64, err);
  printf("\n");
  free(b);
  return 0;
}

/* One NAMEHEX:VALUEHEX pair appended to out. */
static int encode_pair(buf *out, char *pair) {
  char *colon = strchr(pair, ':');
  if (!colon)
    return -1;
  *colon = 0;
  size_t nl, vl;
  uint8_t *name = hex_arg(pair, &nl), *value = hex_arg(colon + 1, &vl);
  int rc = name && value ? qpack_encode_field(out, name, nl, value, vl) : -1;
  free(name);
  free(value);
  return rc;
}

static int cmd_encode(char *args) {
  buf out = {0};
  int rc = qpack_encode_prefix(&out);
  for (char *pair; rc == 0 && (pair = token(&args)) != NULL;)
    rc = encode_pair(&out, pair);
  if (rc == 0) {
    printf("block ");
    puthex(out.data, out.len);
    printf("\n");
  }
  buf_free(&out);
  return rc;
}

static int cmd_bytes(qpack_decoder *d, buf *partial, const char *cmd,
                     char *args) {
  size_t n;
  uint8_t *b = hex_arg(token(&args), &n);
  if (!b)
    return -1;
  if (strcmp(cmd, "enc") == 0)
    reply_code(qpack_decoder_on_encoder_stream(d, b, n));
  else
    reply_code(qpack_encoder_on_decoder_stream(partial, b, n));
  free(b);
  return 0;
}

static int run(qpack_decoder **d, buf *partial, char *line) {
  char *cmd = token(&line);
  if (!cmd)
    return -1;
  if (strcmp(cmd, "decoder") == 0) {
    char *cap = token(&line), *blocked = token(&line);
    if (!cap || !blocked)
      return -1;
    qpack_decoder_free(*d);
    *d =
        qpack_decoder_new(strtoull(cap, NULL, 10), strtoull(blocked, NULL, 10));
    printf("ok\n");
    return *d ? 0 : -1;
  }
  if (strcmp(cmd, "encode") == 0)
    return cmd_encode(line);
  if (strcmp(cmd, "decstream") == 0)
    return cmd_bytes(*d, partial, cmd, line);
  if (!*d)
    return -1;
  if (strcmp(cmd, "enc") == 0)
    return cmd_bytes(*d, partial, cmd, line);
  if (strcmp(cmd, "section") == 0)
    return cmd_section(*d, line);
  if (strcmp(cmd, "cancel") == 0) {
    char *sid = token(&line);
    if (!sid)
      return -1;
    qpack_decoder_cancel_stream(*d, strtoull(sid, NULL, 10));
    printf("ok\n");
    return 0;
  }
  if (strcmp(cmd, "instr") == 0) {
    buf *b = qpack_decoder_instructions(*d);
    printf("instr ");
    puthex(b->data, b->len);
    printf("\n");
    buf_consume(b, b->len);
    return 0;
  }
  return -1;
}

int main(void) {
  qpack_decoder *d = NULL;
  buf partial = {0};
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, stdin)) > 0) {
    if (line[len - 1] == '\n')
      line[len - 1] = 0;
    if (run(&d, &partial, line) != 0)
      printf("bad\n");
    printf("end\n");
    fflush(stdout);
  }
  free(line);
  buf_free(&partial);
  qpack_decoder_free(d);
  return 0;
}
