/* h3q-client: HTTP/3 requests from the command line. The URL list is
 * grouped by origin; each origin gets -c connections and its requests are
 * spread over them round-robin; each connection runs up to -p at once. */
#include "cli_opts.h"
#include "cli_report.h"
#include "h3c_args.h"
#include "h3c_conn.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct origin {
  const h3c_url *url;
  const h3c_tmpl **tmpls; /* this origin's URLs, in command-line order */
  size_t ntmpls;
  uint64_t items; /* ntmpls * repeat requests */
  struct sockaddr_storage addr;
  socklen_t addr_len;
  char err[256]; /* resolution error, "" when resolved */
} origin;

typedef struct slot {
  origin *o;
  h3c_conn *conn;
  unsigned index;         /* global connection number (reported as "conn") */
  uint64_t next;          /* next item of o for this connection; steps by -c */
  unsigned reconnects;    /* since the last successful request */
  const h3c_tmpl **retry; /* requests a GOAWAY returned unprocessed */
  size_t nretry, retry_cap;
} slot;

/* Replacement connections per slot without a successful request between
 * them: bounds a reconnect storm against a server that closes at once. */
#define MAX_RECONNECTS 8

typedef struct client {
  cli_opts opt;
  h3c_ctx x;
  struct ev_loop *loop;
  h3c_body_spec body;
  h3c_tmpl *tmpls;
  origin *origins;
  size_t norigins;
  slot *slots;
  size_t nslots;
  cli_report rep;
  bool stopping;      /* deadline or teardown: no reconnects */
  h3c_conn **retired; /* replaced connections, freed at the end */
  size_t nretired;
  uint64_t total, finished;
  ev_timer deadline;
} client;

static void count_finished(client *cl) {
  if (++cl->finished == cl->total)
    ev_break(cl->loop, EVBREAK_ALL);
}

static const h3c_tmpl *item_tmpl(const client *cl, const origin *o,
                                 uint64_t item) {
  return o->tmpls[item / cl->opt.repeat];
}

static bool has_work(const slot *s) {
  return s->nretry > 0 || s->next < s->o->items;
}

/* Takes the slot's next request: GOAWAY returns first, then new ones. */
static const h3c_tmpl *take_item(client *cl, slot *s) {
  if (s->nretry > 0)
    return s->retry[--s->nretry];
  const h3c_tmpl *t = item_tmpl(cl, s->o, s->next);
  s->next += cl->opt.conns;
  return t;
}

/* Fails every request this slot has not started yet. */
static void fail_remaining(client *cl, slot *s, const char *why) {
  while (has_work(s)) {
    cli_rec *rec = cli_rec_new(take_item(cl, s), s->index);
    rec->req.failed = true;
    snprintf(rec->req.err, sizeof(rec->req.err), "%s", why);
    cli_report_done(&cl->rep, rec);
    cli_rec_free(rec);
    count_finished(cl);
  }
}

static h3c_req *hook_next(void *user, h3c_conn *c) {
  client *cl = user;
  slot *s = h3c_conn_user(c);
  if (!has_work(s))
    return NULL;
  cli_rec *rec = cli_rec_new(take_item(cl, s), s->index);
  return &rec->req;
}

static void hook_done(void *user, h3c_req *r) {
  client *cl = user;
  slot *s = h3c_conn_user(r->conn);
  if (!r->failed)
    s->reconnects = 0;
  if (r->retryable && !cl->stopping) {
    /* Not processed by the server: send it again on this slot's next
     * connection (reconnect() opens it once the old one is closed). */
    if (s->nretry == s->retry_cap) {
      s->retry_cap = s->retry_cap ? s->retry_cap * 2 : 16;
      s->retry = h3c_xrealloc(s->retry, s->retry_cap * sizeof(*s->retry));
    }
    s->retry[s->nretry++] = r->tmpl;
    cli_rec_free(r->user);
    return;
  }
  cli_report_done(&cl->rep, r->user);
  cli_rec_free(r->user);
  count_finished(cl);
}

static void hook_header(void *user, h3c_req *r, h3c_hdr_kind kind,
                        const uint8_t *n, size_t nl, const uint8_t *v,
                        size_t vl) {
  client *cl = user;
  cli_report_header(&cl->rep, r->user, kind, n, nl, v, vl);
}

/* Opens a new connection for s after its connection closed (GOAWAY, a
 * server's requests-per-connection limit). Returns whether it did. */
static bool reconnect(client *cl, slot *s, h3c_conn *old) {
  if (cl->stopping || !has_work(s) || !h3c_conn_graceful(old) ||
      s->reconnects >= MAX_RECONNECTS)
    return false;
  char err[256];
  h3c_conn *c = h3c_conn_new(&cl->x, s->o->url, (struct sockaddr *)&s->o->addr,
                             s->o->addr_len, s->index, err, sizeof(err));
  if (c == NULL)
    return false;
  LOG_DEBUG("conn %u: reconnecting after: %s", s->index, h3c_conn_error(old));
  cl->retired =
      h3c_xrealloc(cl->retired, (cl->nretired + 1) * sizeof(*cl->retired));
  cl->retired[cl->nretired++] = old;
  s->reconnects++;
  s->conn = c;
  h3c_conn_set_user(c, s);
  h3c_conn_set_fail_fast(c, true);
  return true;
}

static void hook_closed(void *user, h3c_conn *c) {
  client *cl = user;
  slot *s = h3c_conn_user(c);
  if (!reconnect(cl, s, c))
    fail_remaining(cl, s, h3c_conn_error(c));
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  client *cl = w->data;
  char why[96];
  snprintf(why, sizeof(why), "timeout: no completion within %g s",
           cl->opt.s.timeout);
  cl->stopping = true;
  for (size_t i = 0; i < cl->nslots; i++) {
    if (cl->slots[i].conn)
      h3c_conn_close(cl->slots[i].conn, why);
    fail_remaining(cl, &cl->slots[i], why);
  }
  ev_break(loop, EVBREAK_ALL);
}

/* Parses the URLs into templates and groups them by origin. */
static void build_plan(client *cl, const char *method) {
  const cli_opts *o = &cl->opt;
  cl->tmpls = h3c_xcalloc(o->nurls, sizeof(*cl->tmpls));
  cl->origins = h3c_xcalloc(o->nurls, sizeof(*cl->origins));
  h3c_body_spec *body = o->data_file ? &cl->body : NULL;
  for (size_t i = 0; i < o->nurls; i++) {
    const char *err = NULL;
    h3c_tmpl *t = &cl->tmpls[i];
    if (h3c_tmpl_init(t, o->urls[i], method, &o->s.headers, body,
                      "h3q-client/0.1", &err) != 0)
      h3c_usage_error("%s: %s", o->urls[i], err);
    origin *g = NULL;
    for (size_t j = 0; j < cl->norigins && !g; j++)
      if (h3c_url_same_origin(cl->origins[j].url, &t->u))
        g = &cl->origins[j];
    if (g == NULL) {
      g = &cl->origins[cl->norigins++];
      g->url = &t->u;
      g->tmpls = h3c_xcalloc(o->nurls, sizeof(*g->tmpls));
    }
    g->tmpls[g->ntmpls++] = t;
    g->items += o->repeat;
  }
  cl->total = o->nurls * o->repeat;
}

static void open_slots(client *cl) {
  uint64_t per = cl->opt.conns;
  cl->nslots = cl->norigins * per;
  cl->slots = h3c_xcalloc(cl->nslots, sizeof(*cl->slots));
  for (size_t i = 0; i < cl->nslots; i++) {
    slot *s = &cl->slots[i];
    s->o = &cl->origins[i / per];
    s->index = (unsigned)i;
    s->next = i % per;
  }
  for (size_t i = 0; i < cl->norigins; i++) {
    origin *g = &cl->origins[i];
    (void)h3c_resolve(g->url->host, g->url->port, &g->addr, &g->addr_len,
                      g->err, sizeof(g->err));
  }
  for (size_t i = 0; i < cl->nslots; i++) {
    slot *s = &cl->slots[i];
    char err[256] = "";
    if (s->o->err[0] == '\0')
      s->conn = h3c_conn_new(&cl->x, s->o->url, (struct sockaddr *)&s->o->addr,
                             s->o->addr_len, s->index, err, sizeof(err));
    if (s->conn)
      h3c_conn_set_user(s->conn, s);
    else
      fail_remaining(cl, s, s->o->err[0] ? s->o->err : err);
  }
}

static int open_output(const cli_opts *o) {
  bool bodies = !o->no_body && (!o->json || o->output);
  if (!bodies)
    return -1;
  if (o->output == NULL || strcmp(o->output, "-") == 0)
    return STDOUT_FILENO;
  int fd = open(o->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    h3c_usage_error("-o %s: %s", o->output, strerror(errno));
  return fd;
}

static void setup(client *cl) {
  cli_opts *o = &cl->opt;
  char err[256];
  const char *method =
      o->s.method ? o->s.method : (o->data_file ? "POST" : "GET");
  if (o->data_file &&
      h3c_body_spec_open(&cl->body, o->data_file, o->nurls * o->repeat > 1, err,
                         sizeof(err)) != 0)
    h3c_usage_error("--data-file %s", err);
  build_plan(cl, method);
  cl->loop = EV_DEFAULT;
  if (h3c_ctx_init(&cl->x, cl->loop, &o->s.tls, err, sizeof(err)) != 0)
    h3c_usage_error("%s", err);
  cl->x.parallel = (unsigned)o->parallel;
  cl->x.sink.out_fd = open_output(o);
  cl->x.sink.hash = o->json;
  cl->x.sink.verify = o->verify;
  cl->x.stall_after = o->stall_after;
  cl->x.stall_s = o->stall_ms / 1000.0;
  cl->x.hooks =
      (h3c_hooks){hook_next, hook_done, hook_header, NULL, hook_closed, cl};
  cl->rep = (cli_report){
      .json = o->json, .include = o->include, .fail_status = o->fail_status};
}

static void teardown(client *cl) {
  cl->stopping = true;
  h3c_conn **conns = h3c_xcalloc(cl->nslots + 1, sizeof(*conns));
  for (size_t i = 0; i < cl->nslots; i++)
    conns[i] = cl->slots[i].conn;
  h3c_conns_close(conns, cl->nslots, "client finished", H3C_CLOSE_WAIT_S);
  free(conns);
  for (size_t i = 0; i < cl->nretired; i++)
    h3c_conn_free(cl->retired[i]);
  free(cl->retired);
  for (size_t i = 0; i < cl->nslots; i++)
    h3c_conn_free(cl->slots[i].conn);
  for (size_t i = 0; i < cl->norigins; i++)
    free(cl->origins[i].tmpls);
  for (size_t i = 0; i < cl->opt.nurls; i++)
    h3c_tmpl_free(&cl->tmpls[i]);
  if (cl->x.sink.out_fd > STDOUT_FILENO)
    close(cl->x.sink.out_fd);
  if (cl->opt.data_file)
    h3c_body_spec_close(&cl->body);
  h3c_ctx_free(&cl->x);
  h3c_kvlist_free(&cl->opt.s.headers);
  for (size_t i = 0; i < cl->nslots; i++)
    free(cl->slots[i].retry);
  free(cl->slots);
  free(cl->origins);
  free(cl->tmpls);
}

int main(int argc, char **argv) {
  static client cl;
  cli_opts_parse(&cl.opt, argc, argv);
  h3c_set_verbosity(cl.opt.s.verbose);
  uint64_t t0 = clock_now_ns();
  setup(&cl);
  ev_init(&cl.deadline, deadline_cb);
  cl.deadline.data = &cl;
  if (cl.opt.s.timeout > 0) {
    cl.deadline.repeat = cl.opt.s.timeout;
    ev_timer_again(cl.loop, &cl.deadline);
  }
  open_slots(&cl);
  if (cl.finished < cl.total)
    ev_run(cl.loop, 0);
  ev_timer_stop(cl.loop, &cl.deadline);
  teardown(&cl);
  if (cl.rep.json)
    cli_report_summary(&cl.rep, clock_ns_to_s(clock_now_ns() - t0));
  return cl.rep.failed > 0 ? 1 : 0;
}
