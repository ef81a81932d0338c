/* A host of the host API (h3q_host_*) written in C, the way a foreign
 * runtime uses it: the library's loop thread serves, this thread blocks in
 * h3q_host_wait, drains events with h3q_host_poll and answers with
 * commands. For tests/integration/test_host.py (also under ASan).
 *   host_tool PORT CERT KEY
 * GET /hello answers "hello"; POST /echo streams the body back (consumed
 * credit returned as the bytes are written back); GET /stream sends 64
 * chunks of 16 KiB, waiting for WRITTEN events to keep at most 256 KiB
 * queued, then trailers. WebTransport sessions on /wt/echo get their
 * datagrams back. SIGTERM stops gracefully; exit 0 after STOPPED. */
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
} tool_stream;

static tool_stream streams[MAX_STREAMS];

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

static void on_request(h3q_host *host, size_t i, uint32_t id) {
  const char *head = (const char *)h3q_host_event_data(host, i);
  const char *method = head;
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
    if (h3q_host_event_value(host, i) == 1) /* no body */
      h3q_host_write(host, id, NULL, 0, H3Q_HOST_END);
  } else if (strcmp(method, "GET") == 0 && strcmp(path, "/stream") == 0) {
    s->stream = true;
    h3q_host_respond(host, id, 200, NULL, 0, NULL, 0, 0);
    send_more(host, s);
  } else {
    h3q_host_respond(host, id, 404, NULL, 0, NULL, 0, H3Q_HOST_END);
  }
}

/* Returns false once the STOPPED event has been seen. */
static bool on_event(h3q_host *host, size_t i) {
  uint32_t id = h3q_host_event_id(host, i);
  tool_stream *s = &streams[id % MAX_STREAMS];
  switch (h3q_host_event_type(host, i)) {
  case H3Q_HOST_REQUEST:
    on_request(host, i, id);
    break;
  case H3Q_HOST_BODY:
    if (s->id == id && s->echo) {
      size_t len = h3q_host_event_len(host, i);
      /* Credit goes back once the bytes have left (WRITTEN), so a slow
       * reader of the echo slows the upload down. */
      h3q_host_write(host, id, h3q_host_event_data(host, i), len, 0);
    }
    break;
  case H3Q_HOST_BODY_END:
    if (s->id == id && s->echo)
      h3q_host_write(host, id, NULL, 0, H3Q_HOST_END);
    break;
  case H3Q_HOST_WRITTEN:
    if (s->id == id && s->echo)
      h3q_host_consume(host, id, (size_t)h3q_host_event_value(host, i));
    if (s->id == id && s->stream) {
      s->inflight -= (long)h3q_host_event_value(host, i);
      send_more(host, s);
    }
    break;
  case H3Q_HOST_CLOSED:
    if (s->id == id)
      s->id = 0;
    break;
  case H3Q_HOST_WT_DATAGRAM:
    h3q_host_wt_send_datagram(host, id, h3q_host_event_data(host, i),
                              h3q_host_event_len(host, i));
    break;
  case H3Q_HOST_STOPPED:
    return false;
  default:
    break;
  }
  return true;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: host_tool PORT CERT KEY\n");
    return 2;
  }
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
    size_t n;
    /* Bounded: the loop thread queues what clients send, which flow
     * control and max_events limit. */
    while (running && (n = h3q_host_poll(host)) > 0)
      for (size_t i = 0; i < n && running; i++)
        running = on_event(host, i);
  }
  h3q_host_free(host);
  printf("host_tool stopped\n");
  return 0;
}
