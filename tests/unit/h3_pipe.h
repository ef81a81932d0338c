/* An in-memory HTTP/3 session under test: a real quiche client and a real
 * quiche server connection pass packets through memory (no sockets), and
 * h3q's HTTP/3 session runs on the server side exactly as in the server
 * (h3_app_ops), while the test writes raw frames from the client. */
#ifndef H3Q_TEST_H3_PIPE_H
#define H3Q_TEST_H3_PIPE_H

#include <netinet/in.h>
#include <quiche.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "h3/frame.h"
#include "h3/qpack.h"
#include "h3/session.h"
#include "h3q.h"
#include "quic/endpoint.h"
#include "quiche_pair.h"
#include "util/buf.h"

typedef struct pipe_ctx {
  quiche_config *ccfg, *scfg;
  quiche_conn *client, *server;
  struct sockaddr_in caddr, saddr;
  quic_endpoint ep;
  h3q_server_stats stats;
  conn sconn;
  h3_config cfg;
  pool stream_pool; /* as in the server: finished streams are reused */
  h3_session *h;
  char dir[64];
} pipe_ctx;

/* Moves what a wants to send into b; returns the number of packets. */
static inline int pipe_move(quiche_conn *a, quiche_conn *b,
                            struct sockaddr_in *b_addr) {
  uint8_t pkt[1500];
  quiche_send_info si;
  int moved = 0;
  for (int i = 0; i < 256; i++) {
    ssize_t n = quiche_conn_send(a, pkt, sizeof pkt, &si);
    if (n <= 0)
      break;
    quiche_recv_info ri = {(struct sockaddr *)&si.from, si.from_len,
                           (struct sockaddr *)b_addr, sizeof *b_addr};
    quiche_conn_recv(b, pkt, (size_t)n, &ri);
    moved++;
  }
  return moved;
}

/* The server's packets to the client, as conn_process's send does (it
 * also counts the send generation). */
static inline int pipe_server_send(pipe_ctx *p) {
  p->sconn.send_generation++;
  return pipe_move(p->server, p->client, &p->caddr);
}

/* Runs the session and moves packets both ways until nothing moves. */
static inline void pipe_run(pipe_ctx *p) {
  for (int round = 0; round < 64; round++) {
    if (!p->h && quiche_conn_is_established(p->server)) {
      p->h = h3_app_ops.start(&p->sconn, &p->cfg);
      p->sconn.app = p->h;
    }
    if (p->h && !quiche_conn_is_closed(p->server))
      h3_app_ops.process(p->h);
    p->ep.dirty = NULL; /* the endpoint's queue: everything runs here */
    p->sconn.dirty = false;
    /* As conn_process does: the server's packets leave right after its
     * session ran, before anything more is received. */
    int moved = pipe_server_send(p);
    moved += pipe_move(p->client, p->server, &p->saddr);
    if (!moved && round > 2)
      return;
  }
}

static inline void pipe_ignore_request(h3q_request *req, h3q_response *res,
                                       void *user) {
  (void)req, (void)user;
  h3q_response_send(res, 200, "text/plain", "ok\n", 3);
}

/* Sets up both ends and completes the handshake; cfg may be tuned
 * between pipe_init and pipe_start. */
static inline int pipe_init(pipe_ctx *p) {
  memset(p, 0, sizeof *p);
  snprintf(p->dir, sizeof p->dir, "/tmp/h3q-pipe-XXXXXX");
  if (!mkdtemp(p->dir))
    return -1;
  char cert[128], key[128];
  snprintf(cert, sizeof cert, "%s/cert.pem", p->dir);
  snprintf(key, sizeof key, "%s/key.pem", p->dir);
  if (h3q_generate_self_signed_cert(cert, key, "localhost", 1) != 0)
    return -1;
  p->ccfg = pipe_quiche_config(NULL, NULL);
  p->scfg = pipe_quiche_config(cert, key);
  unlink(cert);
  unlink(key);
  rmdir(p->dir);
  h3q_config pub;
  h3q_config_init(&pub);
  h3_config_init(&p->cfg, &pub);
  p->cfg.on_request = pipe_ignore_request;
  p->cfg.stats = &p->stats;
  h3_stream_pool_init(&p->stream_pool, 8);
  p->cfg.stream_pool = &p->stream_pool;
  p->ep.stats = &p->stats;
  p->ep.app = &h3_app_ops;
  p->sconn.ep = &p->ep;
  return 0;
}

static inline void pipe_start(pipe_ctx *p) {
  p->caddr = pipe_addr(40000);
  p->saddr = pipe_addr(4433);
  uint8_t cid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  uint8_t sid[16] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
  p->client = quiche_connect(
      "localhost", cid, sizeof cid, (struct sockaddr *)&p->caddr,
      sizeof p->caddr, (struct sockaddr *)&p->saddr, sizeof p->saddr, p->ccfg);
  p->server = quiche_accept(
      sid, sizeof sid, NULL, 0, (struct sockaddr *)&p->saddr, sizeof p->saddr,
      (struct sockaddr *)&p->caddr, sizeof p->caddr, p->scfg);
  p->sconn.q = p->server;
  pipe_run(p);
}

static inline void pipe_free(pipe_ctx *p) {
  if (p->h)
    h3_app_ops.destroy(p->h);
  h3_stream_pool_close(&p->stream_pool);
  if (p->client)
    quiche_conn_free(p->client);
  if (p->server)
    quiche_conn_free(p->server);
  quiche_config_free(p->ccfg);
  quiche_config_free(p->scfg);
}

/* Writes raw bytes on a client stream, all of them (running the pipe
 * while the client's send window is full), or fails the test. */
static inline void pipe_send(pipe_ctx *p, uint64_t id, const void *data,
                             size_t len, bool fin) {
  const uint8_t *d = data;
  size_t off = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t code = 0;
    ssize_t n =
        quiche_conn_stream_send(p->client, id, d + off, len - off, fin, &code);
    if (n > 0)
      off += (size_t)n;
    if ((off == len && n >= 0) || n == QUICHE_ERR_STREAM_STOPPED)
      return; /* all written, or the server stopped reading */
    if (n < 0 && n != QUICHE_ERR_DONE)
      break;
    pipe_run(p);
  }
  CHECK(!"pipe_send could not write everything");
}

/* The client's control stream with SETTINGS (empty unless extra). */
static inline void pipe_client_control(pipe_ctx *p, const h3_settings *s) {
  buf b = {0};
  h3_settings defaults;
  h3_settings_init(&defaults);
  buf_append_byte(&b, H3_STREAM_CONTROL);
  h3_settings_write_frame(&b, s ? s : &defaults);
  pipe_send(p, 2, b.data, b.len, false);
  buf_free(&b);
}

/* Encodes a HEADERS frame for fields given as "name", "value", ... NULL. */
static inline void pipe_headers_frame(buf *out, const char *const *fields) {
  buf q = {0};
  qpack_encode_prefix(&q);
  for (size_t i = 0; fields[i]; i += 2)
    qpack_encode_field(&q, (const uint8_t *)fields[i], strlen(fields[i]),
                       (const uint8_t *)fields[i + 1], strlen(fields[i + 1]));
  h3_frame_write_header(out, H3_FRAME_HEADERS, q.len);
  buf_append(out, q.data, q.len);
  buf_free(&q);
}

/* The application error the server closed the connection with, or -1. */
static inline int64_t pipe_close_code(pipe_ctx *p) {
  bool is_app = false;
  uint64_t code = 0;
  const uint8_t *reason = NULL;
  size_t rlen = 0;
  if (!quiche_conn_peer_error(p->client, &is_app, &code, &reason, &rlen))
    return -1;
  return (int64_t)code;
}

/* Reads everything the server sent on a client stream into out; returns
 * true when FIN was seen. *reset gets the reset code (or stays 0). */
static inline bool pipe_read(pipe_ctx *p, uint64_t id, buf *out,
                             uint64_t *reset) {
  uint8_t tmp[4096];
  bool fin = false;
  for (int i = 0; i < 1024; i++) {
    uint64_t code = 0;
    bool f = false;
    ssize_t n =
        quiche_conn_stream_recv(p->client, id, tmp, sizeof tmp, &f, &code);
    if (n == QUICHE_ERR_STREAM_RESET) {
      if (reset)
        *reset = code;
      return false;
    }
    if (n < 0)
      break;
    buf_append(out, tmp, (size_t)n);
    fin = fin || f;
  }
  return fin;
}

#endif
