/* A request's header sections: QPACK-decoded straight into the validator
 * (RFC 9114 sections 4.1-4.3, src/http/validate.c), stored in the stream,
 * then the request is dispatched; a second section is the trailers. */
#include "h3/stream.h"
#include "h3/stream_internal.h"
#include "util/log.h"

typedef struct section {
  stream *s;
  validate_state v;
  bool trailers;
  bool oom;
} section;

static int collect_field(void *argp, const uint8_t *name, size_t nlen,
                         const uint8_t *value, size_t vlen) {
  section *sec = argp;
  validate_field(&sec->v, name, nlen, value, vlen);
  if (sec->v.verdict != VALIDATE_OK)
    return 1; /* stops decoding */
  int rc = sec->trailers
               ? stream_add_request_trailer(sec->s, name, nlen, value, vlen)
               : stream_add_request_field(sec->s, name, nlen, value, vlen);
  sec->oom = rc != 0;
  return rc ? 1 : 0;
}

/* The first section's verdict decides the response; a trailer section's
 * problems reset the stream once the response started. */
static void section_rejected(stream *s, validate_verdict verdict, int status,
                             const char *why, bool trailers) {
  LOG_DEBUG("conn %llu stream %llu: rejected: %s",
            (unsigned long long)s->h->c->number, (unsigned long long)s->id,
            why ? why : "limit");
  if (verdict == VALIDATE_MALFORMED || s->wstate != RES_IDLE) {
    stream_abort(s, H3Q_H3_MESSAGE_ERROR);
    return;
  }
  s->reject_status = status;
  if (!trailers)
    request_set_state(s, REQ_BODY);
  stream_dispatch(s);
}

/* A request's first section passed: count it against the limits and run
 * its handler. */
static void request_arrived(stream *s) {
  h3_session *h = s->h;
  request_set_state(s, REQ_BODY);
  h->max_request_id = s->id > h->max_request_id ? s->id : h->max_request_id;
  h->any_request = true;
  size_t limit = h->cfg->max_active_requests;
  if (limit && h->streams.len > limit && !s->reject_status)
    s->reject_status = 503;
  stream_dispatch(s);
}

void section_complete(stream *s) {
  h3_session *h = s->h;
  bool trailers = s->rstate == REQ_BODY;
  section sec = {.s = s, .trailers = trailers};
  validate_init(&sec.v, &h->cfg->vlimits, trailers);
  uint64_t err = 0;
  /* The validator enforces the configured section size (431); QPACK stops
   * at the size we announce (twice that) before expanding anything. */
  qpack_result r = qpack_decode_section(
      h->qdec, s->id, s->rx_section.data, s->rx_section.len,
      h->cfg->local.max_field_section_size, collect_field, &sec, &err);
  if (r == QPACK_BLOCKED) {
    s->rx = RX_BLOCKED;
    s->blocked_next = h->blocked;
    h->blocked = s;
    return;
  }
  stream_section_done(s);
  s->rx = RX_FRAME_HEADER;
  if (r == QPACK_ERROR) {
    s->rx = RX_END;
    h3_session_fail(h, err, "QPACK");
    return;
  }
  if (trailers)
    s->trailers_seen = true;
  validate_verdict verdict = validate_finish(&sec.v);
  if (r == QPACK_TOO_LARGE)
    verdict = VALIDATE_STATUS, sec.v.status = 431;
  else if (sec.oom)
    verdict = VALIDATE_STATUS, sec.v.status = 500;
  if (verdict != VALIDATE_OK) {
    section_rejected(s, verdict, sec.v.status, sec.v.reason, trailers);
    return;
  }
  if (!trailers) {
    s->has_content_length = validate_content_length(&sec.v, &s->content_length);
    request_arrived(s);
  }
}

void section_too_large(stream *s) {
  /* Not buffered: the payload is skipped unread, and QPACK forgets it. */
  qpack_decoder_cancel_stream(s->h->qdec, s->id);
  s->rx = s->rx_left ? RX_SKIP : RX_FRAME_HEADER;
  bool trailers = s->rstate == REQ_BODY;
  if (trailers)
    s->trailers_seen = true;
  section_rejected(s, VALIDATE_STATUS, 431, "HEADERS frame too large",
                   trailers);
}

void h3_retry_blocked(h3_session *h) {
  stream *list = h->blocked;
  h->blocked = NULL;
  while (list) {
    stream *s = list;
    list = s->blocked_next;
    s->blocked_next = NULL;
    s->rx = RX_SECTION; /* rx_left is 0: the section is complete */
    section_complete(s);
    if (s->rx == RX_FRAME_HEADER && s->rx_fin_seen)
      s->rx = RX_FIN; /* the FIN came with the blocked section */
    if (s->rx != RX_BLOCKED)
      stream_request_pump(s); /* frames after the section */
  }
}
