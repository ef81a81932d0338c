/* The host API (include/h3q.h, "host"): the server loop on a thread of its
 * own, events to a foreign runtime through a queue it drains by polling,
 * commands back through a queue the loop drains once per wakeup. Built on
 * the public API only; the loop thread drives the server through the
 * embedding API (h3q_server_process), so that each iteration ends with one
 * notification for all the events it queued. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/host_file.h"
#include "h3q.h"
#include "util/u64map.h"

#define DEFAULT_BODY_WINDOW (256u * 1024u)
#define DEFAULT_MAX_EVENTS 65536u
/* Body chunks of one stream that arrive before the host polls are merged
 * into one event up to this size, so a fast upload is a few large events
 * rather than one per QUIC packet. */
#define BODY_MERGE_MAX (64u * 1024u)
#define H3_INTERNAL_ERROR 0x102u
/* A batch's byte arena larger than this is freed once the batch is done,
 * so that one burst does not keep its memory for the server's lifetime. */
#define ARENA_KEEP (256u * 1024u)

/* One event. Body chunks own a buffer of cap bytes (malloc'd, so that the
 * host can take it); other bytes (heads, trailers, datagrams, reasons) are
 * in the queue's byte arena at off. While the loop thread fills a queue,
 * arena events have data NULL (the arena moves as it grows); taking the
 * queue as a batch points them in. */
typedef struct host_event {
  int type;
  uint32_t id;
  int64_t value;
  uint8_t *data;
  size_t len;
  size_t cap; /* > 0: data is owned and this large */
  size_t off; /* arena offset when cap == 0 */
} host_event;

typedef struct event_queue {
  host_event *v;
  size_t len;
  size_t cap;
  uint8_t *arena;
  size_t arena_len;
  size_t arena_cap;
} event_queue;

typedef enum cmd_kind {
  CMD_RESPOND,
  CMD_FILE,
  CMD_WRITE,
  CMD_TRAILERS,
  CMD_RESET,
  CMD_CONSUME,
  CMD_WT_DATAGRAM,
  CMD_WT_CLOSE,
  CMD_WT_OPEN,
  CMD_WT_STOP,
} cmd_kind;

/* One command; a RESPOND or WRITE then waits in its stream's output queue
 * as is, so body bytes are copied once (from the host into the command). */
typedef struct host_cmd {
  struct host_cmd *next;
  cmd_kind kind;
  uint32_t id;
  int status;
  int flags;
  uint64_t num;    /* reset code, consumed bytes */
  size_t head_len; /* bytes[0..head_len): header or trailer fields */
  size_t body_len; /* bytes[head_len..): body */
  size_t off;      /* body bytes already written to the stream */
  host_file *file; /* CMD_FILE: the body, owned until the command runs */
  uint8_t bytes[];
} host_cmd;

/* Body bytes the host wrote, waiting for room on a request or
 * WebTransport stream. */
typedef struct out_queue {
  host_cmd *head;
  host_cmd *tail;
  bool end_queued; /* the host asked to end the stream after them */
  bool ended;      /* the stream's send side was ended */
} out_queue;

typedef struct host_stream {
  h3q_host *host;
  uint32_t id;
  h3q_request *req;
  h3q_response *res;
  out_queue out;
  host_file *file;   /* the body being sent from a file (respond_file) */
  size_t unconsumed; /* request body delivered, not yet consumed */
  bool paused;       /* request body paused for backpressure */
} host_stream;

/* A WebTransport stream the host knows by id: opened by the client, or by
 * the host (h3q_host_wt_open_stream). */
typedef struct host_wt_stream {
  h3q_host *host;
  uint32_t id;
  h3q_wt_stream *stream;
  out_queue out;
  size_t unconsumed; /* bytes delivered, not yet consumed */
  bool read_waiting; /* stopped at body_window until the host consumes */
  bool read_done;    /* the end, a reset, or no receive side */
} host_wt_stream;

struct h3q_host {
  h3q_server *srv;
  pthread_t thread;
  bool started;
  void (*notify)(void);
  size_t body_window;
  size_t max_events;
  int efd;             /* h3q_host_fd: readable while events wait */
  int cmd_fd;          /* eventfd the loop thread waits on for commands */
  atomic_bool fd_used; /* someone asked for efd: keep it signalled */

  pthread_mutex_t ev_lock; /* guards pending, armed, efd_set */
  pthread_cond_t ev_cond;
  event_queue pending; /* filled by the loop thread */
  bool armed;          /* call notify when the next events are published */
  bool efd_set;        /* efd holds a count (events were published) */
  event_queue batch;   /* the host's current batch (host thread only) */
  size_t batch_next;   /* h3q_host_poll_into: first record not handed out */

  pthread_mutex_t cmd_lock; /* guards the command list, wake_pending, corked */
  host_cmd *cmd_head;
  host_cmd *cmd_tail;
  bool wake_pending; /* cmd_fd was signalled and not drained yet */
  bool corked;       /* h3q_host_cork: commands wait for the uncork */
  atomic_bool stopped;

  host_file_cache *files; /* descriptors of respond_file bodies */
  uint8_t *scratch;       /* heads and trailers being built; loop thread only */
  size_t scratch_cap;
  u64map streams;    /* id -> host_stream; loop thread only */
  u64map sessions;   /* id -> host_wt (WebTransport); loop thread only */
  u64map wt_streams; /* id -> host_wt_stream; loop thread only */
  uint32_t next_id;  /* ids the loop thread gives: below HOST_OPENED_ID */
  atomic_uint next_host_id; /* ids of streams the host opens */

  /* Inline mode (h3q_host_start_inline): the host's own thread drives the
   * server through h3q_host_pump; a watcher thread only waits for the
   * socket or the next timer and calls notify. */
  bool inline_mode;
  pthread_t watcher;
  pthread_cond_t watch_cond; /* with ev_lock: watch_armed, watch_quit */
  bool watch_armed;          /* the watcher waits for the socket or timer */
  bool watch_quit;           /* h3q_host_free: the watcher ends */
  int watch_timeout;         /* ms, -1 none; read when armed */
};

/* Ids of streams the host opens carry this bit, so that the host can name
 * them at once, without asking the loop thread. */
#define HOST_OPENED_ID 0x80000000u

/* ------------------------------------------------------------- events */

static int queue_reserve(event_queue *q) {
  if (q->len < q->cap)
    return H3Q_OK;
  size_t cap = q->cap ? q->cap * 2 : 256;
  host_event *v = realloc(q->v, cap * sizeof *v);
  if (!v)
    return H3Q_ENOMEM;
  q->v = v;
  q->cap = cap;
  return H3Q_OK;
}

/* Copies len bytes to the end of the arena; returns their offset, or
 * SIZE_MAX when out of memory. */
static size_t arena_put(event_queue *q, const uint8_t *data, size_t len) {
  if (len > SIZE_MAX / 4 || q->arena_len > SIZE_MAX / 4)
    return SIZE_MAX;
  if (q->arena_cap - q->arena_len < len) {
    size_t cap = q->arena_cap ? q->arena_cap : 4096;
    /* Bounded: doubles until it fits, below SIZE_MAX by the check above. */
    while (cap - q->arena_len < len)
      cap *= 2;
    uint8_t *a = realloc(q->arena, cap);
    if (!a)
      return SIZE_MAX;
    q->arena = a;
    q->arena_cap = cap;
  }
  size_t off = q->arena_len;
  memcpy(q->arena + off, data, len);
  q->arena_len += len;
  return off;
}

/* Frees what the queue's events still own and empties it. */
static void queue_clear(event_queue *q) {
  for (size_t i = 0; i < q->len; i++)
    if (q->v[i].cap)
      free(q->v[i].data);
  q->len = 0;
  q->arena_len = 0;
  if (q->arena_cap > ARENA_KEEP) {
    free(q->arena);
    q->arena = NULL;
    q->arena_cap = 0;
  }
}

static void queue_free(event_queue *q) {
  queue_clear(q);
  free(q->v);
  free(q->arena);
}

/* Points the arena records of a queue that is now a batch at its bytes. */
static void queue_seal(event_queue *q) {
  for (size_t i = 0; i < q->len; i++)
    if (!q->v[i].cap && q->v[i].len)
      q->v[i].data = q->arena + q->v[i].off;
}

/* Appends data to the last pending event when it is a body chunk of the
 * same stream with room; ev_lock held. */
static bool merge_body(h3q_host *host, uint32_t id, const uint8_t *data,
                       size_t len) {
  event_queue *q = &host->pending;
  if (q->len == 0)
    return false;
  host_event *last = &q->v[q->len - 1];
  if (last->type != H3Q_HOST_BODY || last->id != id ||
      last->cap - last->len < len)
    return false;
  memcpy(last->data + last->len, data, len);
  last->len += len;
  return true;
}

static void signal_fd(int fd) {
  uint64_t one = 1;
  ssize_t n = write(fd, &one, sizeof one);
  (void)n; /* a full counter is still readable */
}

static void clear_fd(int fd) {
  uint64_t count;
  ssize_t n = read(fd, &count, sizeof count);
  (void)n; /* EAGAIN when nothing was signalled */
}

/* Queues an event whose bytes are either owned (a buffer of own_cap >=
 * len bytes, body chunks) or, with own_cap 0, copied to the arena. Loop
 * thread; the host learns of it at the next publish_events. Requests
 * beyond max_events are refused with H3Q_ETOOLARGE. */
static int queue_event(h3q_host *host, int type, uint32_t id, int64_t value,
                       const uint8_t *data, size_t len, size_t own_cap) {
  uint8_t *owned = NULL;
  if (own_cap) {
    owned = malloc(own_cap);
    if (!owned)
      return H3Q_ENOMEM;
    if (len)
      memcpy(owned, data, len);
  }
  pthread_mutex_lock(&host->ev_lock);
  event_queue *q = &host->pending;
  /* New work (requests, sessions, datagrams) waits only up to max_events;
   * the rest is bounded by flow control and must not be lost. */
  bool limited = type == H3Q_HOST_REQUEST || type == H3Q_HOST_WT_SESSION ||
                 type == H3Q_HOST_WT_DATAGRAM || type == H3Q_HOST_WT_STREAM;
  size_t off = 0;
  int rc = H3Q_OK;
  if (limited && q->len >= host->max_events)
    rc = H3Q_ETOOLARGE;
  else if (queue_reserve(q) != H3Q_OK)
    rc = H3Q_ENOMEM;
  else if (!own_cap && len && (off = arena_put(q, data, len)) == SIZE_MAX)
    rc = H3Q_ENOMEM;
  if (rc == H3Q_OK)
    q->v[q->len++] = (host_event){type, id, value, owned, len, own_cap, off};
  pthread_mutex_unlock(&host->ev_lock);
  if (rc != H3Q_OK)
    free(owned);
  return rc;
}

/* Queues an event with a copy of len bytes of data (heads, trailers,
 * datagrams, reasons: they go to the batch's arena). */
static int push_event(h3q_host *host, int type, uint32_t id, int64_t value,
                      const uint8_t *data, size_t len) {
  return queue_event(host, type, id, value, data, len, 0);
}

/* Queues a body chunk in a buffer of its own, which the host may take;
 * appended to the previous event instead when that is the same stream's
 * chunk with room. */
static int push_body(h3q_host *host, uint32_t id, const uint8_t *data,
                     size_t len) {
  pthread_mutex_lock(&host->ev_lock);
  bool merged = merge_body(host, id, data, len);
  pthread_mutex_unlock(&host->ev_lock);
  if (merged)
    return H3Q_OK;
  size_t cap = len < BODY_MERGE_MAX ? BODY_MERGE_MAX : len;
  return queue_event(host, H3Q_HOST_BODY, id, 0, data, len, cap);
}

/* Tells the host about the events queued since the last call: one notify
 * (when armed), one wakeup of h3q_host_wait and one signal of the event
 * fd (when in use) per loop iteration, however many events it queued.
 * Loop thread. */
static void publish_events(h3q_host *host) {
  pthread_mutex_lock(&host->ev_lock);
  bool any = host->pending.len > 0;
  /* Inline, the host pumps and polls on one thread: no notify needed. */
  bool wake = any && host->armed && !host->inline_mode;
  if (wake)
    host->armed = false;
  if (any) {
    pthread_cond_broadcast(&host->ev_cond);
    if (!host->efd_set && atomic_load(&host->fd_used)) {
      host->efd_set = true;
      signal_fd(host->efd);
    }
  }
  pthread_mutex_unlock(&host->ev_lock);
  if (wake && host->notify)
    host->notify();
}

/* Makes the pending events the batch (the previous batch is freed);
 * re-arms notify when there were none. Host thread. */
static void take_batch(h3q_host *host) {
  queue_clear(&host->batch);
  host->batch_next = 0;
  pthread_mutex_lock(&host->ev_lock);
  event_queue spare = host->batch;
  host->batch = host->pending;
  host->pending = spare;
  if (host->batch.len == 0)
    host->armed = true;
  if (host->efd_set) {
    host->efd_set = false;
    clear_fd(host->efd);
  }
  pthread_mutex_unlock(&host->ev_lock);
  queue_seal(&host->batch);
}

size_t h3q_host_poll(h3q_host *host) {
  if (!host)
    return 0;
  take_batch(host);
  return host->batch.len;
}

size_t h3q_host_record_size(void) {
  return sizeof(h3q_host_record);
}

/* Fills out with batch event i, copying its bytes to bytes[*used..) or,
 * for body chunks (and bytes too large for an empty buffer), handing over
 * a buffer of their own. Returns false when the bytes do not fit now. */
static bool hand_out(h3q_host *host, size_t i, h3q_host_record *out,
                     uint8_t *bytes, size_t cap, size_t *used, bool first) {
  host_event *e = &host->batch.v[i];
  *out = (h3q_host_record){(uint32_t)e->type, e->id, e->value, NULL, 0, e->len};
  if (e->cap) {
    out->owned = e->data;
    e->data = NULL;
    e->cap = 0;
    return true;
  }
  if (e->len == 0)
    return true;
  if (cap - *used >= e->len) {
    memcpy(bytes + *used, e->data, e->len);
    out->offset = *used;
    *used += e->len;
    return true;
  }
  if (!first)
    return false; /* the next call starts with it */
  out->owned = malloc(e->len);
  if (!out->owned)
    return false;
  memcpy(out->owned, e->data, e->len);
  return true;
}

size_t h3q_host_poll_into(h3q_host *host, h3q_host_record *out, size_t max,
                          uint8_t *bytes, size_t bytes_cap) {
  if (!host || !out || max == 0 || (!bytes && bytes_cap))
    return 0;
  if (host->batch_next >= host->batch.len)
    take_batch(host);
  size_t n = 0, used = 0;
  /* Bounded by max and by the batch. */
  while (n < max && host->batch_next < host->batch.len &&
         hand_out(host, host->batch_next, &out[n], bytes, bytes_cap, &used,
                  n == 0)) {
    n++;
    host->batch_next++;
  }
  if (n == 0 && host->batch_next < host->batch.len) {
    /* Out of memory for the first event's copy: it stays queued, and the
     * next published events call notify so that the host tries again. */
    pthread_mutex_lock(&host->ev_lock);
    host->armed = true;
    pthread_mutex_unlock(&host->ev_lock);
  }
  return n;
}

static const host_event *event_at(const h3q_host *host, size_t i) {
  return host && i < host->batch.len ? &host->batch.v[i] : NULL;
}

int h3q_host_event_type(const h3q_host *host, size_t i) {
  const host_event *e = event_at(host, i);
  return e ? e->type : 0;
}

uint32_t h3q_host_event_id(const h3q_host *host, size_t i) {
  const host_event *e = event_at(host, i);
  return e ? e->id : 0;
}

int64_t h3q_host_event_value(const h3q_host *host, size_t i) {
  const host_event *e = event_at(host, i);
  return e ? e->value : 0;
}

const uint8_t *h3q_host_event_data(const h3q_host *host, size_t i) {
  const host_event *e = event_at(host, i);
  return e ? e->data : NULL;
}

size_t h3q_host_event_len(const h3q_host *host, size_t i) {
  const host_event *e = event_at(host, i);
  return e ? e->len : 0;
}

uint8_t *h3q_host_event_take(h3q_host *host, size_t i) {
  if (!host || i >= host->batch.len)
    return NULL;
  host_event *e = &host->batch.v[i];
  if (e->cap) {
    uint8_t *data = e->data;
    e->data = NULL;
    e->cap = 0;
    return data;
  }
  if (!e->data)
    return NULL;
  /* Arena bytes are the batch's: the host gets a copy of its own. */
  uint8_t *copy = malloc(e->len);
  if (copy)
    memcpy(copy, e->data, e->len);
  return copy;
}

void h3q_host_data_free(void *bytes, void *context) {
  (void)context;
  free(bytes);
}

int h3q_host_wait(h3q_host *host, int timeout_ms) {
  if (!host)
    return 0;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  if (timeout_ms > 0) {
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&host->ev_lock);
  int rc = 0;
  /* Bounded: each round ends by an event or the deadline. */
  while (host->pending.len == 0 && rc == 0 && timeout_ms != 0) {
    if (timeout_ms < 0)
      rc = pthread_cond_wait(&host->ev_cond, &host->ev_lock);
    else
      rc = pthread_cond_timedwait(&host->ev_cond, &host->ev_lock, &until);
  }
  int ready = host->pending.len > 0;
  pthread_mutex_unlock(&host->ev_lock);
  return ready;
}

int h3q_host_fd(const h3q_host *host) {
  if (!host)
    return H3Q_EINVAL;
  h3q_host *h = (h3q_host *)host; /* the fd's state is not the host's */
  pthread_mutex_lock(&h->ev_lock);
  atomic_store(&h->fd_used, true);
  if (h->pending.len > 0 && !h->efd_set) {
    h->efd_set = true;
    signal_fd(h->efd);
  }
  pthread_mutex_unlock(&h->ev_lock);
  return host->efd;
}

/* ------------------------------------------------- streams (loop thread) */

/* Builds the NUL-separated field list of count fields read by at(). */
typedef int (*field_at_fn)(const h3q_request *req, size_t i, const char **name,
                           const char **value);

static size_t fields_size(const h3q_request *req, size_t count,
                          field_at_fn at) {
  size_t size = 0;
  for (size_t i = 0; i < count; i++) {
    const char *n, *v;
    if (at(req, i, &n, &v) == H3Q_OK)
      size += strlen(n) + strlen(v) + 2;
  }
  return size;
}

static uint8_t *put_str(uint8_t *p, const char *s) {
  size_t n = strlen(s) + 1;
  memcpy(p, s, n);
  return p + n;
}

static uint8_t *put_fields(uint8_t *p, const h3q_request *req, size_t count,
                           field_at_fn at) {
  for (size_t i = 0; i < count; i++) {
    const char *n, *v;
    if (at(req, i, &n, &v) == H3Q_OK)
      p = put_str(put_str(p, n), v);
  }
  return p;
}

/* The host's scratch buffer, at least size bytes; NULL when out of
 * memory. Loop thread. */
static uint8_t *scratch(h3q_host *host, size_t size) {
  if (size > host->scratch_cap) {
    uint8_t *p = realloc(host->scratch, size);
    if (!p)
      return NULL;
    host->scratch = p;
    host->scratch_cap = size;
  }
  return host->scratch;
}

/* Builds req's head (see H3Q_HOST_REQUEST) in the scratch buffer. */
static uint8_t *request_head(h3q_host *host, const h3q_request *req,
                             size_t *len) {
  const char *pseudo[5] = {h3q_request_method(req), h3q_request_path(req),
                           h3q_request_query(req), h3q_request_authority(req),
                           h3q_request_scheme(req)};
  size_t count = h3q_request_header_count(req);
  size_t size = fields_size(req, count, h3q_request_header_at);
  for (size_t i = 0; i < 5; i++)
    size += strlen(pseudo[i] ? pseudo[i] : "") + 1;
  uint8_t *head = scratch(host, size);
  if (!head)
    return NULL;
  uint8_t *p = head;
  for (size_t i = 0; i < 5; i++)
    p = put_str(p, pseudo[i] ? pseudo[i] : "");
  put_fields(p, req, count, h3q_request_header_at);
  *len = size;
  return head;
}

static void free_cmd(host_cmd *c) {
  host_file_free(c->file);
  free(c);
}

static void free_cmds(host_cmd *c) {
  while (c) {
    host_cmd *next = c->next;
    free_cmd(c);
    c = next;
  }
}

static void out_clear(out_queue *q) {
  free_cmds(q->head);
  q->head = q->tail = NULL;
}

static void out_push(out_queue *q, host_cmd *c) {
  c->next = NULL;
  if (q->tail)
    q->tail->next = c;
  else
    q->head = c;
  q->tail = c;
  if (c->flags & H3Q_HOST_END)
    q->end_queued = true;
}

typedef ssize_t (*write_fn)(void *target, const void *data, size_t len);

/* Writes queued body bytes while target takes them (a short write or
 * H3Q_EAGAIN: its writable callback comes back); *sent counts them.
 * Returns false when a write failed. */
static bool out_write(out_queue *q, write_fn write, void *target,
                      size_t *sent) {
  *sent = 0;
  /* Bounded: each round frees a command or writes bytes of it, or stops. */
  while (q->head) {
    host_cmd *c = q->head;
    size_t left = c->body_len - c->off;
    if (left == 0) {
      q->head = c->next;
      if (!q->head)
        q->tail = NULL;
      free(c);
      continue;
    }
    ssize_t n = write(target, c->bytes + c->head_len + c->off, left);
    if (n == H3Q_EAGAIN || n == 0)
      return true;
    if (n < 0)
      return false;
    c->off += (size_t)n;
    *sent += (size_t)n;
  }
  return true;
}

static ssize_t write_response(void *res, const void *data, size_t len) {
  return h3q_response_write(res, data, len);
}

static void stream_reset(host_stream *st) {
  out_clear(&st->out);
  host_file_free(st->file);
  st->file = NULL;
  h3q_response_reset(st->res, H3_INTERNAL_ERROR);
}

/* Sends the body file while the stream takes it, then ends the response.
 * After end or reset the close callback may have freed st. */
static void file_flush(host_stream *st) {
  int rc = host_file_send(st->file, st->res);
  if (rc == 0)
    return; /* the writable callback calls us again */
  host_file_free(st->file);
  st->file = NULL;
  if (rc < 0) {
    stream_reset(st);
    return;
  }
  st->out.ended = true;
  if (h3q_response_end(st->res) != H3Q_OK)
    stream_reset(st);
}

/* Writes queued body bytes while the stream takes them, then ends the
 * response when asked; reports bytes that left with a WRITTEN event. */
static void stream_flush(host_stream *st) {
  if (st->file) {
    file_flush(st);
    return;
  }
  size_t sent;
  if (!out_write(&st->out, write_response, st->res, &sent)) {
    stream_reset(st);
    return;
  }
  if (!st->out.head && st->out.end_queued && !st->out.ended) {
    st->out.ended = true;
    if (h3q_response_end(st->res) != H3Q_OK)
      stream_reset(st);
    return;
  }
  if (sent && !st->out.end_queued)
    push_event(st->host, H3Q_HOST_WRITTEN, st->id, (int64_t)sent, NULL, 0);
}

static void on_writable(h3q_response *res, void *user) {
  (void)res;
  stream_flush(user);
}

static void on_body_data(h3q_request *req, const uint8_t *data, size_t len,
                         void *user) {
  host_stream *st = user;
  if (push_body(st->host, st->id, data, len) != H3Q_OK) {
    stream_reset(st);
    return;
  }
  st->unconsumed += len;
  if (!st->paused && st->unconsumed >= st->host->body_window) {
    st->paused = true;
    h3q_request_pause(req);
  }
}

static void on_body_end(h3q_request *req, void *user) {
  host_stream *st = user;
  size_t count = h3q_request_trailer_count(req);
  size_t size = fields_size(req, count, h3q_request_trailer_at);
  uint8_t *fields = size ? scratch(st->host, size) : NULL;
  if (size && !fields) {
    stream_reset(st);
    return;
  }
  if (fields)
    put_fields(fields, req, count, h3q_request_trailer_at);
  if (push_event(st->host, H3Q_HOST_BODY_END, st->id, 0, fields, size))
    stream_reset(st);
}

static void on_stream_close(h3q_response *res, bool aborted, void *user) {
  host_stream *st = user;
  uint64_t code = 0;
  if (aborted) {
    code = h3q_response_peer_error(res);
    if (code == 0)
      code = H3_INTERNAL_ERROR;
  }
  push_event(st->host, H3Q_HOST_CLOSED, st->id, (int64_t)code, NULL, 0);
  u64map_del(&st->host->streams, st->id);
  out_clear(&st->out);
  host_file_free(st->file);
  free(st);
}

static bool id_in_use(const h3q_host *host, uint32_t id) {
  return u64map_get(&host->streams, id) != NULL ||
         u64map_get(&host->sessions, id) != NULL ||
         u64map_get(&host->wt_streams, id) != NULL;
}

static uint32_t new_stream_id(h3q_host *host) {
  /* Bounded: the maps hold far fewer than 2^31 live ids. */
  do {
    host->next_id = (host->next_id + 1) & (HOST_OPENED_ID - 1);
  } while (host->next_id == 0 || id_in_use(host, host->next_id));
  return host->next_id;
}

static int host_handler(h3q_request *req, h3q_response *res, void *user) {
  h3q_host *host = user;
  host_stream *st = calloc(1, sizeof *st);
  size_t head_len = 0;
  uint8_t *head = st ? request_head(host, req, &head_len) : NULL;
  if (!head) {
    free(st);
    return H3Q_ENOMEM;
  }
  *st = (host_stream){.host = host, .req = req, .res = res};
  st->id = new_stream_id(host);
  bool no_body = h3q_request_body_done(req);
  /* See H3Q_HOST_REQUEST: the connection's number above the no-body bit. */
  int64_t value =
      (int64_t)((h3q_request_connection_id(req) << 1) | (no_body ? 1 : 0));
  int rc = u64map_put(&host->streams, st->id, st);
  if (rc == H3Q_OK)
    rc = push_event(host, H3Q_HOST_REQUEST, st->id, value, head, head_len);
  if (rc != H3Q_OK) {
    u64map_del(&host->streams, st->id);
    free(st);
    if (rc == H3Q_ETOOLARGE)
      return h3q_response_send(res, 503, NULL, NULL, 0);
    return rc;
  }
  h3q_response_on_close(res, on_stream_close, st);
  h3q_response_on_writable(res, on_writable, st);
  if (!no_body)
    h3q_request_on_body(req, on_body_data, on_body_end, st);
  return H3Q_OK;
}

/* ------------------------------------------ WebTransport (loop thread) */

/* One accepted WebTransport session the host knows by id. */
typedef struct host_wt {
  h3q_host *host;
  uint32_t id;
  h3q_wt_session *session;
} host_wt;

static void on_wt_datagram(h3q_wt_session *session, const uint8_t *data,
                           size_t len, void *user) {
  (void)session;
  host_wt *w = user;
  /* Unreliable by nature: dropped when the host is max_events behind. */
  push_event(w->host, H3Q_HOST_WT_DATAGRAM, w->id, 0, data, len);
}

/* Bytes of a WebTransport stream go to the host in reads of this size
 * (merged per stream up to BODY_MERGE_MAX while the host has not polled). */
#define WT_READ_CHUNK (16u * 1024u)

/* The client's side of the stream ended: FIN (n 0), or a reset, which the
 * host hears at once since our side may go on (BODY_END's value: 2^32 +
 * the client's code). The session's end says nothing: CLOSED follows. */
static void wts_read_ended(host_wt_stream *s, ssize_t n) {
  s->read_done = true;
  int64_t code = n == 0 ? -1 : h3q_wt_stream_reset_code(s->stream);
  if (n != 0 && code == -1)
    return;
  int64_t value = n == 0 ? 0 : ((int64_t)1 << 32) + (code < 0 ? 0 : code);
  if (push_event(s->host, H3Q_HOST_BODY_END, s->id, value, NULL, 0) != H3Q_OK)
    h3q_wt_stream_reset(s->stream, 0);
}

/* Delivers the stream's bytes (H3Q_HOST_BODY) and its end
 * (H3Q_HOST_BODY_END) up to body_window ahead of what the host consumed. */
static void wts_read(host_wt_stream *s) {
  uint8_t buf[WT_READ_CHUNK];
  /* Bounded: each round adds bytes to unconsumed, capped by the window. */
  while (!s->read_done && s->unconsumed < s->host->body_window) {
    ssize_t n = h3q_wt_stream_read(s->stream, buf, sizeof buf);
    if (n == H3Q_EAGAIN)
      return; /* on_readable follows */
    if (n <= 0) {
      wts_read_ended(s, n);
      return;
    }
    if (push_body(s->host, s->id, buf, (size_t)n) != H3Q_OK) {
      s->read_done = true;
      h3q_wt_stream_stop(s->stream, 0);
      h3q_wt_stream_reset(s->stream, 0);
      return;
    }
    s->unconsumed += (size_t)n;
  }
  s->read_waiting = !s->read_done;
}

static ssize_t write_wt(void *stream, const void *data, size_t len) {
  return h3q_wt_stream_write(stream, data, len);
}

/* As stream_flush, for a WebTransport stream's send side. */
static void wts_flush(host_wt_stream *s) {
  size_t sent;
  if (!out_write(&s->out, write_wt, s->stream, &sent)) {
    out_clear(&s->out); /* reset or stopped: CLOSED follows */
    s->out.ended = true;
    return;
  }
  if (!s->out.head && s->out.end_queued && !s->out.ended) {
    s->out.ended = true;
    if (h3q_wt_stream_end(s->stream) != H3Q_OK)
      h3q_wt_stream_reset(s->stream, 0);
    return;
  }
  if (sent && !s->out.end_queued)
    push_event(s->host, H3Q_HOST_WRITTEN, s->id, (int64_t)sent, NULL, 0);
}

static void on_wts_readable(h3q_wt_stream *stream, void *user) {
  (void)stream;
  host_wt_stream *s = user;
  if (!s->read_waiting)
    wts_read(s);
}

static void on_wts_writable(h3q_wt_stream *stream, void *user) {
  (void)stream;
  wts_flush(user);
}

/* CLOSED's value for a WebTransport stream: 0 when both directions ended
 * cleanly, else 2^32 + the client's WebTransport code (0 without one). */
static int64_t wts_close_value(const h3q_wt_stream *stream, bool aborted) {
  if (!aborted)
    return 0;
  int64_t code = h3q_wt_stream_reset_code(stream);
  if (code < 0)
    code = h3q_wt_stream_stop_code(stream);
  return ((int64_t)1 << 32) + (code < 0 ? 0 : code);
}

static void on_wts_close(h3q_wt_stream *stream, bool aborted, void *user) {
  host_wt_stream *s = user;
  push_event(s->host, H3Q_HOST_CLOSED, s->id, wts_close_value(stream, aborted),
             NULL, 0);
  u64map_del(&s->host->wt_streams, s->id);
  out_clear(&s->out);
  free(s);
}

/* Takes stream as id and tells the host (H3Q_HOST_WT_STREAM). Returns
 * H3Q_OK, or an error after which the stream is the caller's again. */
static int wts_adopt(h3q_host *host, uint32_t session_id, uint32_t id,
                     h3q_wt_stream *stream) {
  host_wt_stream *s = calloc(1, sizeof *s);
  if (!s)
    return H3Q_ENOMEM;
  bool bidi = h3q_wt_stream_is_bidi(stream);
  *s = (host_wt_stream){.host = host, .id = id, .stream = stream};
  /* A stream we opened one-way has no receive side. */
  s->read_done = !bidi && h3q_wt_stream_is_local(stream);
  int64_t value = (int64_t)session_id + (bidi ? (int64_t)1 << 32 : 0);
  int rc = u64map_put(&host->wt_streams, id, s);
  if (rc == H3Q_OK)
    rc = push_event(host, H3Q_HOST_WT_STREAM, id, value, NULL, 0);
  if (rc != H3Q_OK) {
    u64map_del(&host->wt_streams, id);
    free(s);
    return rc;
  }
  h3q_wt_stream_on_readable(stream, on_wts_readable, s);
  h3q_wt_stream_on_writable(stream, on_wts_writable, s);
  h3q_wt_stream_on_close(stream, on_wts_close, s);
  wts_read(s); /* bytes may be there already */
  return H3Q_OK;
}

static void on_wt_stream(h3q_wt_session *session, h3q_wt_stream *stream,
                         void *user) {
  (void)session;
  host_wt *w = user;
  if (wts_adopt(w->host, w->id, new_stream_id(w->host), stream) != H3Q_OK) {
    /* Out of memory, or max_events behind: refuse the stream. */
    h3q_wt_stream_stop(stream, 0);
    h3q_wt_stream_reset(stream, 0);
  }
}

static void on_wt_close(h3q_wt_session *session, uint32_t code,
                        const char *reason, size_t reason_len, void *user) {
  (void)session;
  host_wt *w = user;
  push_event(w->host, H3Q_HOST_WT_CLOSED, w->id, code, (const uint8_t *)reason,
             reason_len);
  u64map_del(&w->host->sessions, w->id);
  free(w);
}

static int host_wt_handler(h3q_request *req, h3q_wt_session *session,
                           void *user) {
  h3q_host *host = user;
  host_wt *w = calloc(1, sizeof *w);
  size_t head_len = 0;
  uint8_t *head = w ? request_head(host, req, &head_len) : NULL;
  if (!head) {
    free(w);
    return H3Q_ENOMEM;
  }
  *w = (host_wt){.host = host, .session = session};
  w->id = new_stream_id(host);
  int rc = u64map_put(&host->sessions, w->id, w);
  if (rc == H3Q_OK)
    rc = push_event(host, H3Q_HOST_WT_SESSION, w->id, 0, head, head_len);
  if (rc != H3Q_OK) {
    u64map_del(&host->sessions, w->id);
    free(w);
    return rc == H3Q_ETOOLARGE ? 503 : rc;
  }
  h3q_wt_session_on_datagram(session, on_wt_datagram, w);
  h3q_wt_session_on_stream(session, on_wt_stream, w);
  h3q_wt_session_on_close(session, on_wt_close, w);
  return 200;
}

/* Opens the stream the host named c->id in session c->num; the host
 * hears H3Q_HOST_WT_STREAM, or H3Q_HOST_CLOSED with a negative code. */
static void cmd_wt_open(h3q_host *host, host_cmd *c) {
  host_wt *w = u64map_get(&host->sessions, c->num);
  h3q_wt_stream *stream = NULL;
  int rc;
  if (!w)
    rc = H3Q_ECLOSED;
  else if (id_in_use(host, c->id))
    rc = H3Q_EEXIST; /* the host's ids wrapped around onto a live one */
  else
    rc = h3q_wt_session_open_stream(w->session, c->flags != 0, &stream);
  if (rc == H3Q_OK) {
    rc = wts_adopt(host, w->id, c->id, stream);
    if (rc != H3Q_OK)
      h3q_wt_stream_reset(stream, 0);
  }
  if (rc != H3Q_OK)
    push_event(host, H3Q_HOST_CLOSED, c->id, rc, NULL, 0);
  free(c);
}

static void cmd_wts_consume(host_wt_stream *s, size_t n) {
  s->unconsumed -= n < s->unconsumed ? n : s->unconsumed;
  if (s->read_waiting && s->unconsumed < s->host->body_window / 2) {
    s->read_waiting = false;
    wts_read(s);
  }
}

/* A command for a WebTransport stream (write, reset, stop, consume). */
static void run_wts_cmd(host_wt_stream *s, host_cmd *c) {
  if (c->kind == CMD_WRITE && !s->out.ended) {
    out_push(&s->out, c);
    wts_flush(s);
    return;
  }
  if (c->kind == CMD_RESET)
    h3q_wt_stream_reset(s->stream, (uint32_t)c->num);
  else if (c->kind == CMD_WT_STOP)
    h3q_wt_stream_stop(s->stream, (uint32_t)c->num);
  else if (c->kind == CMD_CONSUME)
    cmd_wts_consume(s, (size_t)c->num);
  free_cmd(c); /* errors: the stream is closing, and CLOSED tells */
}

static void run_wt_cmd(h3q_host *host, host_cmd *c) {
  host_wt *w = u64map_get(&host->sessions, c->id);
  if (w && c->kind == CMD_WT_DATAGRAM)
    h3q_wt_session_send_datagram(w->session, c->bytes, c->body_len);
  else if (w && c->kind == CMD_WT_CLOSE)
    h3q_wt_session_close(w->session, (uint32_t)c->num,
                         (const char *)c->bytes); /* NUL-terminated */
  free(c); /* errors (closing, too large) drop it: datagrams are lossy */
}

int h3q_host_webtransport(h3q_host *host, const char *pattern) {
  if (!host || !pattern)
    return H3Q_EINVAL;
  if (host->started)
    return H3Q_ESTATE;
  return h3q_server_webtransport(host->srv, pattern, host_wt_handler, host);
}

/* ------------------------------------------------ commands (loop thread) */

/* Calls add(res, name, value) for each name\0value\0 pair. */
static int add_fields(h3q_response *res, const uint8_t *p, size_t len,
                      int (*add)(h3q_response *, const char *, const char *)) {
  const uint8_t *end = p + len;
  /* Bounded: each round consumes two NUL-terminated strings. */
  while (p < end) {
    const uint8_t *n_end = memchr(p, 0, (size_t)(end - p));
    if (!n_end)
      return H3Q_EINVAL;
    const uint8_t *v = n_end + 1;
    const uint8_t *v_end = v < end ? memchr(v, 0, (size_t)(end - v)) : NULL;
    if (!v_end)
      return H3Q_EINVAL;
    int rc = add(res, (const char *)p, (const char *)v);
    if (rc != H3Q_OK)
      return rc;
    p = v_end + 1;
  }
  return H3Q_OK;
}

static void cmd_respond(host_stream *st, host_cmd *c) {
  if (h3q_response_set_status(st->res, c->status) != H3Q_OK ||
      add_fields(st->res, c->bytes, c->head_len, h3q_response_header) !=
          H3Q_OK) {
    free(c);
    stream_reset(st);
    return;
  }
  bool stream_on = c->body_len == 0 && !(c->flags & H3Q_HOST_END);
  out_push(&st->out, c);
  /* A streamed response sends its header section now, not with the first
   * body bytes, so that clients see the status at once. */
  if (stream_on)
    h3q_response_write(st->res, "", 0);
  stream_flush(st);
}

/* h3q_response_header for the host's fields but content-length, which a
 * file response takes from the file. */
static int header_but_length(h3q_response *res, const char *name,
                             const char *value) {
  if (strcasecmp(name, "content-length") == 0)
    return H3Q_OK;
  return h3q_response_header(res, name, value);
}

static bool bodiless_status(int status) {
  return status == 204 || status == 304;
}

/* The user's status and fields, content-length from the opened file, and
 * the file as the body (none for HEAD, 204 and 304). */
static void cmd_file(host_stream *st, host_cmd *c) {
  host_file *f = c->file;
  c->file = NULL;
  bool bodiless = bodiless_status(c->status);
  int rc = h3q_response_set_status(st->res, c->status);
  if (rc == H3Q_OK)
    rc = add_fields(st->res, c->bytes, c->head_len, header_but_length);
  if (rc == H3Q_OK && !bodiless) {
    char len[24];
    snprintf(len, sizeof len, "%llu", (unsigned long long)host_file_size(f));
    rc = h3q_response_header(st->res, "content-length", len);
  }
  free(c);
  if (rc != H3Q_OK) {
    host_file_free(f);
    stream_reset(st);
    return;
  }
  const char *method = h3q_request_method(st->req);
  st->out.end_queued = true;
  if (bodiless || host_file_size(f) == 0 ||
      (method && strcmp(method, "HEAD") == 0))
    host_file_free(f); /* stream_flush ends the response at once */
  else
    st->file = f;
  stream_flush(st);
}

static void cmd_trailers(host_stream *st, host_cmd *c) {
  int rc = add_fields(st->res, c->bytes, c->head_len, h3q_response_trailer);
  free(c);
  if (rc != H3Q_OK) {
    stream_reset(st);
    return;
  }
  st->out.end_queued = true;
  stream_flush(st);
}

static void cmd_consume(host_stream *st, host_cmd *c) {
  st->unconsumed -= c->num < st->unconsumed ? (size_t)c->num : st->unconsumed;
  free(c);
  if (st->paused && st->unconsumed < st->host->body_window / 2) {
    st->paused = false;
    h3q_request_resume(st->req);
  }
}

static void run_cmd(h3q_host *host, host_cmd *c) {
  if (c->kind == CMD_WT_DATAGRAM || c->kind == CMD_WT_CLOSE) {
    run_wt_cmd(host, c);
    return;
  }
  if (c->kind == CMD_WT_OPEN) {
    cmd_wt_open(host, c);
    return;
  }
  host_wt_stream *ws = u64map_get(&host->wt_streams, c->id);
  if (ws) {
    run_wts_cmd(ws, c);
    return;
  }
  host_stream *st = u64map_get(&host->streams, c->id);
  if (!st || st->out.ended) {
    free_cmd(c); /* the stream is gone; its CLOSED event tells the host */
    return;
  }
  switch (c->kind) {
  case CMD_RESPOND:
    cmd_respond(st, c);
    break;
  case CMD_FILE:
    cmd_file(st, c);
    break;
  case CMD_WRITE:
    out_push(&st->out, c);
    stream_flush(st);
    break;
  case CMD_TRAILERS:
    cmd_trailers(st, c);
    break;
  case CMD_RESET:
    h3q_response_reset(st->res, c->num);
    free(c);
    break;
  case CMD_CONSUME:
    cmd_consume(st, c);
    break;
  case CMD_WT_DATAGRAM:
  case CMD_WT_CLOSE:
  case CMD_WT_OPEN:
  case CMD_WT_STOP:
    free(c); /* WebTransport only */
    break;
  }
}

/* Runs the commands queued so far; returns whether there were any. Loop
 * thread. */
static bool drain_cmds(h3q_host *host) {
  pthread_mutex_lock(&host->cmd_lock);
  host_cmd *c = host->cmd_head;
  host->cmd_head = host->cmd_tail = NULL;
  host->wake_pending = false;
  pthread_mutex_unlock(&host->cmd_lock);
  bool any = c != NULL;
  /* Bounded: the list was detached; new commands wait for the next call. */
  while (c) {
    host_cmd *next = c->next;
    run_cmd(host, c);
    c = next;
  }
  return any;
}

/* Wakes the loop thread for the queued commands unless a wakeup is pending
 * or the host holds them back (h3q_host_cork; even_corked: h3q_host_flush
 * overrides that); cmd_lock held. Returns whether the caller must signal
 * cmd_fd (after unlocking). */
static bool need_wake(h3q_host *host, bool even_corked) {
  if (host->inline_mode) /* the next h3q_host_pump runs them */
    return false;
  if (host->wake_pending || (host->corked && !even_corked) || !host->cmd_head)
    return false;
  host->wake_pending = true;
  return true;
}

static int submit(h3q_host *host, host_cmd *c) {
  if (atomic_load(&host->stopped)) {
    free_cmd(c);
    return H3Q_ESTATE;
  }
  c->next = NULL;
  pthread_mutex_lock(&host->cmd_lock);
  if (host->cmd_tail)
    host->cmd_tail->next = c;
  else
    host->cmd_head = c;
  host->cmd_tail = c;
  /* One wakeup per batch: later commands ride on the pending drain. */
  bool wake = need_wake(host, false);
  pthread_mutex_unlock(&host->cmd_lock);
  if (wake)
    signal_fd(host->cmd_fd);
  return H3Q_OK;
}

/* h3q_host_cork (on: cork set to on) and h3q_host_flush (on: NULL). */
static int cork_or_flush(h3q_host *host, const bool *on) {
  if (!host)
    return H3Q_EINVAL;
  pthread_mutex_lock(&host->cmd_lock);
  if (on)
    host->corked = *on;
  bool wake = need_wake(host, on == NULL);
  pthread_mutex_unlock(&host->cmd_lock);
  if (wake)
    signal_fd(host->cmd_fd);
  return H3Q_OK;
}

int h3q_host_cork(h3q_host *host, bool on) {
  return cork_or_flush(host, &on);
}

int h3q_host_flush(h3q_host *host) {
  if (host && host->inline_mode)
    return h3q_host_pump(host);
  return cork_or_flush(host, NULL);
}

static host_cmd *new_cmd(cmd_kind kind, uint32_t id, const uint8_t *head,
                         size_t head_len, const uint8_t *body,
                         size_t body_len) {
  if (head_len > SIZE_MAX / 2 || body_len > SIZE_MAX / 2)
    return NULL;
  host_cmd *c = malloc(sizeof *c + head_len + body_len);
  if (!c)
    return NULL;
  *c = (host_cmd){
      .kind = kind, .id = id, .head_len = head_len, .body_len = body_len};
  if (head_len)
    memcpy(c->bytes, head, head_len);
  if (body_len && body)
    memcpy(c->bytes + head_len, body, body_len);
  else if (body_len)
    memset(c->bytes + head_len, 0, body_len);
  return c;
}

static bool args_ok(const h3q_host *host, uint32_t id, const uint8_t *a,
                    size_t alen, const uint8_t *b, size_t blen) {
  return host && id != 0 && (a || alen == 0) && (b || blen == 0);
}

int h3q_host_respond(h3q_host *host, uint32_t id, int status,
                     const uint8_t *head, size_t head_len, const uint8_t *body,
                     size_t body_len, int flags) {
  if (!args_ok(host, id, head, head_len, body, body_len))
    return H3Q_EINVAL;
  host_cmd *c = new_cmd(CMD_RESPOND, id, head, head_len, body, body_len);
  if (!c)
    return H3Q_ENOMEM;
  c->status = status;
  c->flags = flags;
  return submit(host, c);
}

int h3q_host_respond_file(h3q_host *host, uint32_t id, int status,
                          const uint8_t *head, size_t head_len,
                          const char *path, int64_t expect_size) {
  if (!args_ok(host, id, head, head_len, NULL, 0) || !path)
    return H3Q_EINVAL;
  if (atomic_load(&host->stopped))
    return H3Q_ESTATE;
  host_file *f;
  int rc = host_file_open(host->files, path, expect_size, &f);
  if (rc != H3Q_OK)
    return rc;
  host_cmd *c = new_cmd(CMD_FILE, id, head, head_len, NULL, 0);
  if (!c) {
    host_file_free(f);
    return H3Q_ENOMEM;
  }
  c->status = status;
  c->file = f;
  return submit(host, c); /* frees c, and so f, when stopped */
}

int h3q_host_write(h3q_host *host, uint32_t id, const uint8_t *body, size_t len,
                   int flags) {
  if (!args_ok(host, id, NULL, 0, body, len))
    return H3Q_EINVAL;
  host_cmd *c = new_cmd(CMD_WRITE, id, NULL, 0, body, len);
  if (!c)
    return H3Q_ENOMEM;
  c->flags = flags;
  return submit(host, c);
}

int h3q_host_trailers(h3q_host *host, uint32_t id, const uint8_t *fields,
                      size_t len) {
  if (!args_ok(host, id, fields, len, NULL, 0))
    return H3Q_EINVAL;
  host_cmd *c = new_cmd(CMD_TRAILERS, id, fields, len, NULL, 0);
  return c ? submit(host, c) : H3Q_ENOMEM;
}

/* Queues a command that carries one number (a code, a byte count). */
static int submit_num(h3q_host *host, cmd_kind kind, uint32_t id,
                      uint64_t num) {
  if (!args_ok(host, id, NULL, 0, NULL, 0))
    return H3Q_EINVAL;
  host_cmd *c = new_cmd(kind, id, NULL, 0, NULL, 0);
  if (!c)
    return H3Q_ENOMEM;
  c->num = num;
  return submit(host, c);
}

int h3q_host_reset(h3q_host *host, uint32_t id, uint64_t h3_error) {
  return submit_num(host, CMD_RESET, id, h3_error);
}

int h3q_host_consume(h3q_host *host, uint32_t id, size_t n) {
  return submit_num(host, CMD_CONSUME, id, n);
}

int h3q_host_wt_send_datagram(h3q_host *host, uint32_t id, const uint8_t *data,
                              size_t len) {
  if (!args_ok(host, id, NULL, 0, data, len))
    return H3Q_EINVAL;
  host_cmd *c = new_cmd(CMD_WT_DATAGRAM, id, NULL, 0, data, len);
  return c ? submit(host, c) : H3Q_ENOMEM;
}

int h3q_host_wt_close(h3q_host *host, uint32_t id, uint32_t code,
                      const uint8_t *reason, size_t len) {
  if (!args_ok(host, id, reason, len, NULL, 0) || len > 1024)
    return H3Q_EINVAL;
  /* Room for the NUL that h3q_wt_session_close wants. */
  host_cmd *c = new_cmd(CMD_WT_CLOSE, id, reason, len, NULL, 1);
  if (!c)
    return H3Q_ENOMEM;
  c->bytes[len] = 0;
  c->num = code;
  return submit(host, c);
}

int h3q_host_wt_open_stream(h3q_host *host, uint32_t session, bool bidi,
                            uint32_t *id) {
  if (!args_ok(host, session, NULL, 0, NULL, 0) || !id)
    return H3Q_EINVAL;
  host_cmd *c = new_cmd(CMD_WT_OPEN, 0, NULL, 0, NULL, 0);
  if (!c)
    return H3Q_ENOMEM;
  uint32_t n = atomic_fetch_add(&host->next_host_id, 1) % HOST_OPENED_ID;
  c->id = HOST_OPENED_ID | (n ? n : 1);
  c->num = session;
  c->flags = bidi;
  uint32_t named = c->id;
  int rc = submit(host, c);
  if (rc == H3Q_OK)
    *id = named;
  return rc;
}

int h3q_host_wt_stop(h3q_host *host, uint32_t id, uint32_t code) {
  return submit_num(host, CMD_WT_STOP, id, code);
}

/* ----------------------------------------------------------- lifecycle */

static void free_fds(h3q_host *host) {
  if (host->efd >= 0)
    close(host->efd);
  if (host->cmd_fd >= 0)
    close(host->cmd_fd);
}

int h3q_host_new(const h3q_config *cfg, size_t body_window, size_t max_events,
                 h3q_host **out, char *err, size_t errlen) {
  if (!out || !cfg)
    return H3Q_EINVAL;
  *out = NULL;
  if (cfg && cfg->workers > 1) {
    /* Events and commands pass through one loop thread. */
    if (err && errlen)
      snprintf(err, errlen,
               "workers: the host API runs one event loop; must be 1 (got %u)",
               cfg->workers);
    return H3Q_ECONFIG;
  }
  h3q_host *host = calloc(1, sizeof *host);
  if (!host)
    return H3Q_ENOMEM;
  host->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  host->cmd_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (host->efd < 0 || host->cmd_fd < 0) {
    free_fds(host);
    free(host);
    return H3Q_EIO;
  }
  /* The loop thread drives the server itself (loop_main), which needs the
   * embeddable backend; the copy shares cfg's strings for the call only. */
  h3q_config own = *cfg;
  own.loop_backend = H3Q_LOOP_EPOLL;
  host->files = host_file_cache_new();
  int rc =
      host->files ? h3q_server_new(&own, &host->srv, err, errlen) : H3Q_ENOMEM;
  if (rc != H3Q_OK) {
    host_file_cache_free(host->files);
    free_fds(host);
    free(host);
    return rc;
  }
  host->body_window = body_window ? body_window : DEFAULT_BODY_WINDOW;
  host->max_events = max_events ? max_events : DEFAULT_MAX_EVENTS;
  host->armed = true;
  atomic_init(&host->stopped, false);
  atomic_init(&host->fd_used, false);
  atomic_init(&host->next_host_id, 1);
  pthread_mutex_init(&host->ev_lock, NULL);
  pthread_cond_init(&host->ev_cond, NULL);
  pthread_cond_init(&host->watch_cond, NULL);
  pthread_mutex_init(&host->cmd_lock, NULL);
  h3q_server_set_fallback(host->srv, host_handler, host);
  *out = host;
  return H3Q_OK;
}

/* The loop: process what is due, tell the host about the events that
 * produced, run its commands, then sleep until datagrams, a timer or
 * commands arrive. Returns 0 once the server has stopped, else a negative
 * H3Q_E* code. */
static int run_loop(h3q_host *host) {
  struct pollfd fds[2] = {{h3q_server_fd(host->srv), POLLIN, 0},
                          {host->cmd_fd, POLLIN, 0}};
  /* Bounded by the server: it stops (h3q_host_stop, h3q_host_free). */
  for (;;) {
    int rc = h3q_server_process(host->srv);
    publish_events(host);
    if (rc != H3Q_OK)
      return rc == H3Q_SERVER_STOPPED ? H3Q_OK : rc;
    /* Commands ran: process again at once to send what they queued. */
    if (drain_cmds(host))
      continue;
    int64_t wait = h3q_server_next_timeout_ms(host->srv);
    if (wait == 0)
      continue;
    if (poll(fds, 2, wait > INT_MAX ? INT_MAX : (int)wait) < 0 &&
        errno != EINTR)
      return H3Q_EIO;
    /* Cleared before the next drain: a command queued after it signals
     * again. */
    if (fds[1].revents)
      clear_fd(host->cmd_fd);
  }
}

static void *loop_main(void *arg) {
  h3q_host *host = arg;
  int rc = h3q_server_start(host->srv);
  if (rc == H3Q_OK)
    rc = run_loop(host);
  atomic_store(&host->stopped, true);
  push_event(host, H3Q_HOST_STOPPED, 0, rc, NULL, 0);
  publish_events(host);
  return NULL;
}

int h3q_host_start(h3q_host *host, void (*notify)(void)) {
  if (!host)
    return H3Q_EINVAL;
  if (host->started)
    return H3Q_ESTATE;
  host->notify = notify;
  if (pthread_create(&host->thread, NULL, loop_main, host) != 0)
    return H3Q_EIO;
#ifdef __linux__
  /* So that top, perf and /proc tell it from the host's own threads. */
  pthread_setname_np(host->thread, "h3q-host");
#endif
  host->started = true;
  return H3Q_OK;
}

/* ------------------------------------------------------------ inline */

/* The watcher of an inline host: once armed, waits for the server's fd or
 * its next timer, then disarms and calls notify. cmd_fd (unused by an
 * inline host's commands) restarts the wait when the host re-arms with a
 * new deadline, and ends it at h3q_host_free. Bounded by the host's life
 * (watch_quit). */
static void *watch_main(void *arg) {
  h3q_host *host = arg;
  struct pollfd fds[2] = {{h3q_server_fd(host->srv), POLLIN, 0},
                          {host->cmd_fd, POLLIN, 0}};
  for (;;) {
    pthread_mutex_lock(&host->ev_lock);
    while (!host->watch_armed && !host->watch_quit)
      pthread_cond_wait(&host->watch_cond, &host->ev_lock);
    bool quit = host->watch_quit;
    int wait = host->watch_timeout;
    pthread_mutex_unlock(&host->ev_lock);
    if (quit)
      return NULL;
    int n = poll(fds, 2, wait);
    if (n < 0 && errno == EINTR)
      continue;
    if (n > 0 && fds[1].revents) {
      clear_fd(host->cmd_fd);
      if (!fds[0].revents)
        continue; /* re-armed with a new deadline, or quitting */
    }
    pthread_mutex_lock(&host->ev_lock);
    quit = host->watch_quit;
    host->watch_armed = false;
    pthread_mutex_unlock(&host->ev_lock);
    if (quit)
      return NULL;
    host->notify();
  }
}

/* Drives an inline host's stopping server on this thread until it ends,
 * for at most about two seconds (200 waits of up to 10 ms). */
static void run_to_end(h3q_host *host) {
  struct pollfd fd = {h3q_server_fd(host->srv), POLLIN, 0};
  for (int i = 0; i < 200 && h3q_server_process(host->srv) == H3Q_OK; i++) {
    int64_t wait = h3q_server_next_timeout_ms(host->srv);
    (void)poll(&fd, 1, wait < 0 || wait > 10 ? 10 : (int)wait);
  }
}

int h3q_host_start_inline(h3q_host *host, void (*notify)(void)) {
  if (!host || !notify)
    return H3Q_EINVAL;
  if (host->started)
    return H3Q_ESTATE;
  host->notify = notify;
  host->inline_mode = true;
  int rc = h3q_server_start(host->srv);
  if (rc == H3Q_OK &&
      pthread_create(&host->watcher, NULL, watch_main, host) != 0) {
    h3q_server_stop(host->srv);
    run_to_end(host);
    rc = H3Q_EIO;
  }
  if (rc != H3Q_OK) {
    host->inline_mode = false;
    return rc;
  }
#ifdef __linux__
  pthread_setname_np(host->watcher, "h3q-watch");
#endif
  host->started = true;
  return h3q_host_arm(host);
}

int h3q_host_pump(h3q_host *host) {
  if (!host)
    return H3Q_EINVAL;
  if (!host->inline_mode || !host->started || atomic_load(&host->stopped))
    return H3Q_ESTATE;
  int rc = H3Q_OK;
  /* Bounded: a few rounds of receive, commands, send; what is left waits
   * for the next pump (the watcher sees the fd or a 0 deadline). */
  for (int round = 0; round < 8; round++) {
    rc = h3q_server_process(host->srv);
    publish_events(host);
    if (rc != H3Q_OK)
      break;
    if (!drain_cmds(host) && h3q_server_next_timeout_ms(host->srv) != 0)
      break;
  }
  if (rc == H3Q_OK) {
    pthread_mutex_lock(&host->ev_lock);
    size_t ready = host->pending.len + (host->batch.len - host->batch_next);
    pthread_mutex_unlock(&host->ev_lock);
    return ready > INT_MAX ? INT_MAX : (int)ready;
  }
  atomic_store(&host->stopped, true);
  push_event(host, H3Q_HOST_STOPPED, 0, rc == H3Q_SERVER_STOPPED ? H3Q_OK : rc,
             NULL, 0);
  publish_events(host);
  return rc == H3Q_SERVER_STOPPED ? 1 : rc;
}

int h3q_host_arm(h3q_host *host) {
  if (!host)
    return H3Q_EINVAL;
  if (!host->inline_mode || !host->started)
    return H3Q_ESTATE;
  int64_t wait = h3q_server_next_timeout_ms(host->srv);
  pthread_mutex_lock(&host->ev_lock);
  bool waiting = host->watch_armed;
  host->watch_timeout = wait < 0 || wait > INT_MAX ? -1 : (int)wait;
  host->watch_armed = true;
  pthread_cond_broadcast(&host->watch_cond);
  pthread_mutex_unlock(&host->ev_lock);
  if (waiting) /* its poll has the old deadline: restart it */
    signal_fd(host->cmd_fd);
  return H3Q_OK;
}

static void stop_now(void *user);

/* h3q_host_free of an inline host: ends the watcher, then (unless the
 * server already stopped) resets what is open and drives the server to
 * its end here, for at most about two seconds. */
static void end_inline(h3q_host *host) {
  pthread_mutex_lock(&host->ev_lock);
  host->watch_quit = true;
  pthread_cond_broadcast(&host->watch_cond);
  pthread_mutex_unlock(&host->ev_lock);
  signal_fd(host->cmd_fd);
  pthread_join(host->watcher, NULL);
  if (atomic_load(&host->stopped))
    return;
  stop_now(host);
  run_to_end(host);
  atomic_store(&host->stopped, true);
}

uint16_t h3q_host_port(const h3q_host *host) {
  return host ? h3q_server_port(host->srv) : 0;
}

h3q_server *h3q_host_server(h3q_host *host) {
  return host ? host->srv : NULL;
}

/* Loop thread: resets every open stream, then stops the server. */
static void stop_now(void *user) {
  h3q_host *host = user;
  size_t n = host->streams.len;
  uint32_t *ids = n ? malloc(n * sizeof *ids) : NULL;
  size_t k = 0;
  for (size_t i = 0; ids && i < host->streams.cap && k < n; i++)
    if (host->streams.slots[i].value)
      ids[k++] = (uint32_t)host->streams.slots[i].key;
  /* By id, since a reset may close (and free) a stream at once. */
  for (size_t i = 0; i < k; i++) {
    host_stream *st = u64map_get(&host->streams, ids[i]);
    if (st)
      h3q_response_reset(st->res, H3_INTERNAL_ERROR);
  }
  free(ids);
  h3q_server_stop(host->srv);
}

int h3q_host_stop(h3q_host *host, bool graceful) {
  if (!host)
    return H3Q_EINVAL;
  if (!host->started)
    return H3Q_ESTATE;
  if (host->inline_mode) {
    /* On the driving thread already; the host's next pumps finish it. */
    if (!atomic_load(&host->stopped)) {
      if (graceful)
        h3q_server_stop(host->srv);
      else
        stop_now(host);
    }
    return H3Q_OK;
  }
  if (graceful || h3q_server_post(host->srv, stop_now, host) != H3Q_OK)
    h3q_server_stop(host->srv);
  return H3Q_OK;
}

void h3q_host_free(h3q_host *host) {
  if (!host)
    return;
  if (host->started && host->inline_mode)
    end_inline(host);
  else if (host->started) {
    h3q_host_stop(host, false);
    pthread_join(host->thread, NULL);
  }
  /* The loop's end closed every stream and session (their close callbacks
   * freed them); freeing the server closes what a never-started host may
   * hold, then anything left is freed here. */
  h3q_server_free(host->srv);
  for (size_t i = 0; i < host->streams.cap; i++) {
    host_stream *st = host->streams.slots[i].value;
    if (st) {
      out_clear(&st->out);
      host_file_free(st->file);
      free(st);
    }
  }
  u64map_free(&host->streams);
  for (size_t i = 0; i < host->sessions.cap; i++)
    free(host->sessions.slots[i].value);
  u64map_free(&host->sessions);
  for (size_t i = 0; i < host->wt_streams.cap; i++) {
    host_wt_stream *s = host->wt_streams.slots[i].value;
    if (s) {
      out_clear(&s->out);
      free(s);
    }
  }
  u64map_free(&host->wt_streams);
  free_cmds(host->cmd_head);
  queue_free(&host->pending);
  queue_free(&host->batch);
  host_file_cache_free(host->files); /* after every file let go */
  free(host->scratch);
  pthread_mutex_destroy(&host->ev_lock);
  pthread_cond_destroy(&host->ev_cond);
  pthread_cond_destroy(&host->watch_cond);
  pthread_mutex_destroy(&host->cmd_lock);
  free_fds(host);
  free(host);
}
