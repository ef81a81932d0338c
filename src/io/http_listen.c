#include "io/http_listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

/* Connections accepted per readable event, so a flood of connects does
 * not starve the QUIC socket. */
#define ACCEPTS_PER_WAKEUP 16

typedef struct http_client {
  struct http_listener *owner;
  int fd; /* -1: free slot */
  char head[HTTP_LISTEN_HEAD_MAX];
  size_t head_len;
  char *out; /* the whole response, once the head was read */
  size_t out_len, out_off;
  loop_timer *deadline;
} http_client;

struct http_listener {
  const loop_ops *lo;
  loop *l;
  int fd;
  uint16_t port;
  http_get_cb cb;
  void *user;
  http_client clients[HTTP_LISTEN_CLIENTS];
};

static void client_close(http_client *c) {
  if (c->fd < 0)
    return;
  c->owner->lo->unwatch(c->owner->l, c->fd);
  c->owner->lo->timer_stop(c->deadline);
  close(c->fd);
  c->fd = -1;
  free(c->out);
  c->out = NULL;
  c->head_len = c->out_len = c->out_off = 0;
}

static void on_deadline(void *arg) {
  client_close(arg); /* too slow: the slot goes to someone else */
}

/* Every byte of s[0..n) is within lo..hi. */
static bool all_in(const char *s, size_t n, int lo, int hi) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < lo || (unsigned char)s[i] > hi)
      return false;
  return true;
}

int http_parse_head(const char *buf, size_t len, char *method,
                    size_t method_cap, char *path, size_t path_cap) {
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  if (!end)
    end = memmem(buf, len, "\n\n", 2);
  if (!end)
    return len >= HTTP_LISTEN_HEAD_MAX ? -1 : 0;
  /* end points at a newline, so the first one is found at or before it. */
  const char *line_end = memchr(buf, '\n', len);
  const char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
  if (!sp1 || sp1 == buf || (size_t)(sp1 - buf) >= method_cap)
    return -1;
  const char *target = sp1 + 1;
  const char *sp2 = memchr(target, ' ', (size_t)(line_end - target));
  if (!sp2 || sp2 == target || *target != '/' || (size_t)(line_end - sp2) < 9 ||
      memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
    return -1;
  size_t mlen = (size_t)(sp1 - buf), plen = strcspn(target, "? ");
  if (plen >= path_cap || !all_in(buf, mlen, 'A', 'Z') ||
      !all_in(target, (size_t)(sp2 - target), 0x21, 0x7e))
    return -1;
  memcpy(method, buf, mlen);
  method[mlen] = '\0';
  memcpy(path, target, plen);
  path[plen] = '\0';
  return 1;
}

static const char *reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  default:
    return "Internal Server Error";
  }
}

/* Builds the whole response (status line, headers, body) in c->out. */
static bool build_response(http_client *c, int status, char *body, size_t len,
                           const char *ctype, bool head_only) {
  char err_body[64];
  if (status != 200 || !body) {
    status = status == 200 ? 500 : status;
    free(body);
    body = NULL;
    len = (size_t)snprintf(err_body, sizeof err_body, "%d %s\n", status,
                           reason(status));
    ctype = "text/plain; charset=utf-8";
  }
  char hdr[256];
  int hl = snprintf(hdr, sizeof hdr,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: "
                    "%zu\r\nConnection: close\r\n%s\r\n",
                    status, reason(status), ctype, len,
                    status == 405 ? "Allow: GET, HEAD\r\n" : "");
  size_t body_len = head_only ? 0 : len;
  c->out = hl > 0 ? malloc((size_t)hl + body_len) : NULL;
  if (c->out) {
    memcpy(c->out, hdr, (size_t)hl);
    memcpy(c->out + hl, body ? body : err_body, body_len);
    c->out_len = (size_t)hl + body_len;
  }
  free(body);
  return c->out != NULL;
}

static void on_client_writable(void *arg) {
  http_client *c = arg;
  while (c->out_off < c->out_len) {
    ssize_t n =
        send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return; /* watched for writability: called again */
    break;
  }
  client_close(c); /* done, or the client went away */
}

static void respond(http_client *c, int parsed, const char *method,
                    const char *path) {
  http_listener *h = c->owner;
  int status = 400;
  char *body = NULL;
  size_t len = 0;
  const char *ctype = "text/plain";
  bool head_only = parsed == 1 && strcmp(method, "HEAD") == 0;
  if (parsed == 1 && strcmp(method, "GET") != 0 && !head_only)
    status = 405;
  else if (parsed == 1)
    status = h->cb(path, &body, &len, &ctype, h->user);
  h->lo->unwatch(h->l, c->fd);
  if (!build_response(c, status, body, len, ctype, head_only) ||
      h->lo->watch_writable(h->l, c->fd, on_client_writable, c) != 0) {
    client_close(c);
    return;
  }
  on_client_writable(c);
}

static void on_client_readable(void *arg) {
  http_client *c = arg;
  for (;;) {
    size_t room = sizeof c->head - c->head_len;
    ssize_t n = room ? recv(c->fd, c->head + c->head_len, room, 0) : 0;
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return; /* the rest of the head later */
    if (n <= 0 && room) {
      client_close(c); /* closed or failed before a whole head */
      return;
    }
    c->head_len += (size_t)n;
    char method[16], path[1024];
    int parsed = http_parse_head(c->head, c->head_len, method, sizeof method,
                                 path, sizeof path);
    if (parsed != 0) {
      respond(c, parsed, method, path);
      return;
    }
  }
}

static http_client *free_client(http_listener *h) {
  for (size_t i = 0; i < HTTP_LISTEN_CLIENTS; i++)
    if (h->clients[i].fd < 0)
      return &h->clients[i];
  return NULL;
}

static void on_listener_readable(void *arg) {
  http_listener *h = arg;
  for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
    int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return; /* EAGAIN, or an error the next event may not repeat */
    http_client *c = free_client(h);
    if (!c || h->lo->watch_readable(h->l, fd, on_client_readable, c) != 0) {
      LOG_DEBUG("metrics: busy, closing a new client");
      close(fd);
      continue;
    }
    c->fd = fd;
    h->lo->timer_arm(c->deadline, HTTP_LISTEN_TIMEOUT_NS);
  }
}

static int open_socket(http_listener *h, const struct sockaddr *addr,
                       socklen_t len, char *err, size_t errlen) {
  h->fd =
      socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (h->fd < 0 ||
      setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(h->fd, addr, len) != 0 || listen(h->fd, 64) != 0) {
    snprintf(err, errlen, "metrics_addr: cannot listen: %s", strerror(errno));
    return -1;
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(h->fd, (struct sockaddr *)&ss, &sl);
  h->port =
      ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                     : ((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

http_listener *http_listener_new(const loop_ops *lo, loop *l,
                                 const struct sockaddr *addr, socklen_t len,
                                 http_get_cb cb, void *user, char *err,
                                 size_t errlen) {
  http_listener *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, errlen, "metrics_addr: out of memory");
    return NULL;
  }
  h->lo = lo;
  h->l = l;
  h->cb = cb;
  h->user = user;
  h->fd = -1;
  for (size_t i = 0; i < HTTP_LISTEN_CLIENTS; i++) {
    h->clients[i].fd = -1;
    h->clients[i].owner = h;
    h->clients[i].deadline = lo->timer_new(l, on_deadline, &h->clients[i]);
    if (!h->clients[i].deadline) {
      snprintf(err, errlen, "metrics_addr: out of memory");
      http_listener_free(h);
      return NULL;
    }
  }
  if (open_socket(h, addr, len, err, errlen) != 0 ||
      lo->watch_readable(l, h->fd, on_listener_readable, h) != 0) {
    if (h->fd >= 0 && !err[0])
      snprintf(err, errlen, "metrics_addr: cannot watch the listener");
    http_listener_free(h);
    return NULL;
  }
  return h;
}

uint16_t http_listener_port(const http_listener *h) {
  return h ? h->port : 0;
}

void http_listener_free(http_listener *h) {
  if (!h)
    return;
  for (size_t i = 0; i < HTTP_LISTEN_CLIENTS; i++) {
    client_close(&h->clients[i]);
    if (h->clients[i].deadline)
      h->lo->timer_free(h->clients[i].deadline);
  }
  if (h->fd >= 0) {
    h->lo->unwatch(h->l, h->fd);
    close(h->fd);
  }
  free(h);
}
