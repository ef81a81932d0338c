#include "cli_report.h"

#include "h3c_args.h"
#include "h3c_json.h"

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cli_rec *cli_rec_new(const h3c_tmpl *t, unsigned conn) {
  cli_rec *rec = h3c_xcalloc(1, sizeof(*rec));
  h3c_req_init(&rec->req, t, rec);
  /* A request that never starts still reports the hash of no bytes. */
  crypto_hash_sha256_init(&rec->req.sink.sha);
  rec->conn = conn;
  return rec;
}

static void fields_free(cli_fields *f) {
  for (size_t i = 0; i < f->n; i++) {
    free(f->v[i].name);
    free(f->v[i].value);
  }
  free(f->v);
}

void cli_rec_free(cli_rec *rec) {
  if (rec == NULL)
    return;
  fields_free(&rec->headers);
  fields_free(&rec->trailers);
  free(rec);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
  uint8_t *d = h3c_xmalloc(n);
  memcpy(d, p, n);
  return d;
}

static void fields_add(cli_fields *f, const uint8_t *n, size_t nl,
                       const uint8_t *v, size_t vl) {
  if (f->n == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 8;
    f->v = h3c_xrealloc(f->v, f->cap * sizeof(*f->v));
  }
  cli_field *x = &f->v[f->n++];
  x->name = dup_bytes(n, nl);
  x->name_len = nl;
  x->value = dup_bytes(v, vl);
  x->value_len = vl;
}

void cli_report_header(cli_report *rp, cli_rec *rec, h3c_hdr_kind kind,
                       const uint8_t *name, size_t name_len,
                       const uint8_t *value, size_t value_len) {
  if (rp->include)
    fprintf(stderr, "< %s%.*s: %.*s\n",
            kind == H3C_HDR_TRAILER ? "[trailer] " : "", (int)name_len,
            (const char *)name, (int)value_len, (const char *)value);
  if (!rp->json || kind == H3C_HDR_INFO || (name_len > 0 && name[0] == ':'))
    return;
  fields_add(kind == H3C_HDR_TRAILER ? &rec->trailers : &rec->headers, name,
             name_len, value, value_len);
}

static void print_fields(FILE *f, const cli_fields *fs) {
  fputc('[', f);
  for (size_t i = 0; i < fs->n; i++) {
    fputs(i ? ",[" : "[", f);
    h3c_json_str(f, fs->v[i].name, fs->v[i].name_len);
    fputc(',', f);
    h3c_json_str(f, fs->v[i].value, fs->v[i].value_len);
    fputc(']', f);
  }
  fputc(']', f);
}

static void print_json(cli_rec *rec) {
  h3c_req *r = &rec->req;
  char hex[65];
  h3c_sink_hex(&r->sink, hex);
  FILE *f = stdout;
  fputs("{\"url\":", f);
  h3c_json_cstr(f, r->tmpl->url);
  fputs(",\"method\":", f);
  h3c_json_cstr(f, r->tmpl->method);
  if (r->status > 0)
    fprintf(f, ",\"status\":%d", r->status);
  else
    fputs(",\"status\":null", f);
  fputs(",\"headers\":", f);
  print_fields(f, &rec->headers);
  fputs(",\"trailers\":", f);
  print_fields(f, &rec->trailers);
  fprintf(f, ",\"body_bytes\":%llu,\"sha256\":\"%s\",\"conn\":%u",
          (unsigned long long)r->sink.bytes, hex, rec->conn);
  if (r->stream_id >= 0)
    fprintf(f, ",\"stream_id\":%lld", (long long)r->stream_id);
  else
    fputs(",\"stream_id\":null", f);
  fputs(",\"ms\":", f);
  h3c_json_num(f, h3c_req_ms(r));
  fputs(",\"error\":", f);
  h3c_json_cstr(f, r->failed ? r->err : NULL);
  fputs("}\n", f);
  fflush(f); /* bodies may share stdout through write(2) */
}

void cli_report_done(cli_report *rp, cli_rec *rec) {
  h3c_req *r = &rec->req;
  if (!r->failed && rp->fail_status && r->status >= 400) {
    r->failed = true;
    snprintf(r->err, sizeof(r->err), "HTTP status %d", r->status);
  }
  if (r->failed) {
    rp->failed++;
    warnx("%s: %s", r->tmpl->url, r->err);
  } else {
    rp->ok++;
  }
  if (rp->json)
    print_json(rec);
}

void cli_report_summary(const cli_report *rp, double seconds) {
  printf("{\"summary\":true,\"ok\":%llu,\"failed\":%llu,\"seconds\":",
         (unsigned long long)rp->ok, (unsigned long long)rp->failed);
  h3c_json_num(stdout, seconds);
  fputs("}\n", stdout);
  fflush(stdout);
}
