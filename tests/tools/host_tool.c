/* A host of the host API (h3q_host_*) written in C, the way a foreign
 * runtime uses it: the library's loop thread serves, this thread blocks in
 * h3q_host_wait, drains events with h3q_host_poll and answers with
 * commands. For tests/integration/test_host.py (also under ASan).
 *   host_tool PORT CERT KEY [BYTES]
 * With BYTES, events come through h3q_host_poll_into with a bytes buffer
 * of that size (small sizes split batches and hand large heads over as
 * buffers of their own), and commands are corked around each batch.
 * GET /hello answers "hello"; POST /echo streams the body back (consumed
 * credit returned as the bytes are written back); GET /stream sends 64
 * chunks of 16 KiB, waiting for WRITTEN events to keep at most 256 KiB
 * queued, then trailers. GET or HEAD /file/ABSOLUTE-PATH answers with that
 * file (h3q_host_respond_file; x-file: 1), 404 when it is missing.
 * GET /conn answers with the request's connection number (the REQUEST
 * event's value >> 1) in x-conn.
 * WebTransport sessions on /wt/echo get their
 * datagrams back, every bidirectional stream echoed on itself (a reset
 * answered with a reset of the same code), and the bytes of every one-way
 * stream on a one-way stream of the tool's. SIGTERM stops gracefully;
 * exit 0 after STOPPED. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h3q.h"

#define MAX_STREAMS 4096
#define CHUNK (16 * 1024)
#define STREAM_CHUNKS 64
#define STREAM_WINDOW (256 * 1024)

static atomic_bool stop_flag;

/* Per-stream state of this host, indexed by id % MAX_STREAMS. */
typedef struct tool_stream {
  uint32_t id;
  bool echo;
  bool stream;
  int sent_chunks;
  long inflight;
  uint32_t forward; /* a client's one-way stream: the tool's stream */
} tool_stream;

#define WT_CODE ((int64_t)1 << 32) /* BODY_END values at and above: reset */

static tool_stream streams[MAX_STREAMS];

/* One event, from the getters or from a record. */
typedef struct tool_event {
  int type;
  uint32_t id;
  int64_t value;
  const uint8_t *data;
  size_t len;
} tool_event;

static void on_term(int sig) {
  (void)sig;
  atomic_store(&stop_flag, true);
}

static void send_more(h3q_host *host, tool_stream *s) {
  static uint8_t block[CHUNK];
  /* Bounded: at most STREAM_CHUNKS writes per stream in total. */
  while (s->sent_chunks < STREAM_CHUNKS && s->inflight < STREAM_WINDOW) {
    memset(block, 'a' + s->sent_chunks % 26, sizeof block);
    h3q_host_write(host, s->id, block, sizeof block, 0);
    s->inflight += CHUNK;
    s->sent_chunks++;
  }
  if (s->sent_chunks == STREAM_CHUNKS) {
    static const uint8_t tr[] = "x-chunks\0"
                                "64\0";
    h3q_host_trailers(host, s->id, tr, sizeof tr - 1);
    s->sent_chunks++; /* done */
  }
}

/* The file at path (test files only: the tool serves loopback tests). */
static void respond_file(h3q_host *host, uint32_t id, const char *path) {
  static const uint8_t head[] = "x-file\0"
                                "1\0";
  int rc =
      h3q_host_respond_file(host, id, 200, head, sizeof head - 1, path, -1);
  if (rc != H3Q_OK)
    h3q_host_respond(host, id, rc == H3Q_ENOTFOUND ? 404 : 500, NULL, 0, NULL,
                     0, H3Q_HOST_END);
}

static void on_request(h3q_host *host, const tool_event *e) {
  uint32_t id = e->id;
  const char *method = (const char *)e->data;
  const char *path = method + strlen(method) + 1;
  tool_stream *s = &streams[id % MAX_STREAMS];
  *s = (tool_stream){.id = id};
  static const uint8_t text[] = "content-type\0text/plain\0";
  if (strcmp(method, "GET") == 0 && strcmp(path, "/hello") == 0) {
    h3q_host_respond(host, id, 200, text, sizeof text - 1,
                     (const uint8_t *)"hello", 5, H3Q_HOST_END);
  } else if (strcmp(method, "POST") == 0 && strcmp(path, "/echo") == 0) {
    s->echo = true;
    h3q_host_respond(host, id, 200, NULL, 0, NULL, 0, 0);
    if (e->value & 1) /* no body */
      h3q_host_write(host, id, NULL, 0, H3Q_HOST_END);
  } else if (strcmp(method, "GET") == 0 && strcmp(path, "/stream") == 0) {
    s->stream = true;
    h3q_host_respond(host, id, 200, NULL, 0, NULL, 0, 0);
    send_more(host, s);
  } else if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
             strncmp(path, "/file/", 6) == 0) {
    respond_file(host, id, path + 5);
  } else if (strcmp(method, "GET") == 0 && strcmp(path, "/conn") == 0) {
    char head[48];
    int n = snprintf(head, sizeof head, "x-conn%c%llu%c", 0,
                     (unsigned long long)(e->value >> 1), 0);
    h3q_host_respond(host, id, 200, (const uint8_t *)head, (size_t)n, NULL, 0,
                     H3Q_HOST_END);
  } else {
    h3q_host_respond(host, id, 404, NULL, 0, NULL, 0, H3Q_HOST_END);
  }
}

/* A WebTransport stream the client opened: bidirectional ones are echoed,
 * one-way ones forwarded to a one-way stream of ours. */
static void on_wt_stream(h3q_host *host, const tool_event *e) {
  if (e->id & 0x80000000u)
    return; /* one of ours, now open */
  tool_stream *s = &streams[e->id % MAX_STREAMS];
  *s = (tool_stream){.id = e->id};
  bool bidi = e->value >= WT_CODE;
  uint32_t session = (uint32_t)(e->value & 0xffffffff);
  if (bidi)
    s->echo = true;
  else if (h3q_host_wt_open_stream(host, session, false, &s->forward) != H3Q_OK)
    s->forward = 0;
}

/* Returns false once the STOPPED event has been seen. */
static bool on_event(h3q_host *host, const tool_event *e) {
  uint32_t id = e->id;
  tool_stream *s = &streams[id % MAX_STREAMS];
  switch (e->type) {
  case H3Q_HOST_REQUEST:
    on_request(host, e);
    break;
  case H3Q_HOST_BODY:
    /* Credit goes back once the bytes have left (WRITTEN), so a slow
     * reader of the echo slows the upload down. */
    if (s->id == id && s->echo)
      h3q_host_write(host, id, e->data, e->len, 0);
    if (s->id == id && s->forward) {
      h3q_host_write(host, s->forward, e->data, e->len, 0);
      h3q_host_consume(host, id, e->len);
    }
    break;
  case H3Q_HOST_BODY_END:
    if (s->id == id && (s->echo || s->forward) && e->value >= WT_CODE)
      h3q_host_reset(host, s->echo ? id : s->forward,
                     (uint64_t)(e->value - WT_CODE));
    else if (s->id == id && (s->echo || s->forward))
      h3q_host_write(host, s->echo ? id : s->forward, NULL, 0, H3Q_HOST_END);
    break;
  case H3Q_HOST_WT_STREAM:
    on_wt_stream(host, e);
    break;
  case H3Q_HOST_WRITTEN:
    if (s->id == id && s->echo)
      h3q_host_consume(host, id, (size_t)e->value);
    if (s->id == id && s->stream) {
      s->inflight -= (long)e->value;
      send_more(host, s);
    }
    break;
  case H3Q_HOST_CLOSED:
    if (s->id == id)
      s->id = 0;
    break;
  case H3Q_HOST_WT_DATAGRAM:
    h3q_host_wt_send_datagram(host, id, e->data, e->len);
    break;
  case H3Q_HOST_STOPPED:
    return false;
  default:
    break;
  }
  return true;
}

/* Drains the waiting events with the getters; false after STOPPED. */
static bool drain_getters(h3q_host *host) {
  size_t n;
  /* Bounded: the loop thread queues what clients send, which flow
   * control and max_events limit. */
  while ((n = h3q_host_poll(host)) > 0)
    for (size_t i = 0; i < n; i++) {
      tool_event e = {h3q_host_event_type(host, i), h3q_host_event_id(host, i),
                      h3q_host_event_value(host, i),
                      h3q_host_event_data(host, i),
                      h3q_host_event_len(host, i)};
      if (!on_event(host, &e))
        return false;
    }
  return true;
}

/* The same with h3q_host_poll_into into a bytes buffer of cap bytes. */
static bool drain_records(h3q_host *host, uint8_t *bytes, size_t cap) {
  static h3q_host_record recs[64];
  bool running = true;
  size_t n;
  h3q_host_cork(host, true);
  /* Bounded as above. */
  while (running && (n = h3q_host_poll_into(host, recs, 64, bytes, cap)) > 0)
    for (size_t i = 0; i < n; i++) {
      const h3q_host_record *r = &recs[i];
      const uint8_t *data = r->owned ? r->owned : bytes + r->offset;
      tool_event e = {(int)r->type, r->id, r->value, r->len ? data : NULL,
                      r->len};
      if (running)
        running = on_event(host, &e);
      h3q_host_data_free(r->owned, NULL);
    }
  h3q_host_cork(host, false);
  return running;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: host_tool PORT CERT KEY [BYTES]\n");
    return 2;
  }
  size_t bytes_cap = argc == 5 ? strtoul(argv[4], NULL, 10) : 0;
  uint8_t *bytes = bytes_cap ? malloc(bytes_cap) : NULL;
  h3q_config *cfg = h3q_config_new();
  if (!cfg || h3q_config_set(cfg, "bind_addr", "127.0.0.1") ||
      h3q_config_set(cfg, "port", argv[1]) ||
      h3q_config_set(cfg, "cert_path", argv[2]) ||
      h3q_config_set(cfg, "key_path", argv[3]) ||
      h3q_config_set(cfg, "enable_webtransport", "true")) {
    fprintf(stderr, "host_tool: bad arguments\n");
    h3q_config_free(cfg);
    return 2;
  }
  char err[256];
  h3q_host *host = NULL;
  int rc = h3q_host_new(cfg, 0, 0, &host, err, sizeof err);
  h3q_config_free(cfg);
  if (rc != H3Q_OK) {
    fprintf(stderr, "host_tool: %s\n", err);
    return 1;
  }
  if (h3q_host_webtransport(host, "/wt/echo") != H3Q_OK)
    return 1;
  signal(SIGTERM, on_term);
  if (h3q_host_start(host, NULL) != H3Q_OK)
    return 1;
  printf("host_tool listening on 127.0.0.1:%u\n", h3q_host_port(host));
  fflush(stdout);
  bool running = true, stopping = false;
  while (running) {
    if (atomic_load(&stop_flag) && !stopping) {
      stopping = true;
      h3q_host_stop(host, true);
    }
    h3q_host_wait(host, 100);
    running =
        bytes ? drain_records(host, bytes, bytes_cap) : drain_getters(host);
  }
  h3q_host_free(host);
  free(bytes);
  printf("host_tool stopped\n");
  return 0;
}
