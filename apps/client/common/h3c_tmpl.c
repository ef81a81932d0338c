#include "h3c_tmpl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(h3c_tmpl *t, const char *name, const char *value) {
  quiche_h3_header *h = &t->hdrs[t->nhdrs++];
  h->name = (const uint8_t *)name;
  h->name_len = strlen(name);
  h->value = (const uint8_t *)value;
  h->value_len = strlen(value);
}

int h3c_tmpl_init(h3c_tmpl *t, const char *url, const char *method,
                  const h3c_kvlist *extra, h3c_body_spec *body,
                  const char *agent, const char **err) {
  memset(t, 0, sizeof(*t));
  if (h3c_url_parse(url, &t->u, err) != 0)
    return -1;
  t->url = h3c_xstrdup(url);
  t->method = h3c_xstrdup(method);
  t->is_head = strcmp(method, "HEAD") == 0;
  t->body = body;
  /* 4 pseudo-headers + user-agent + content-length + the extras. The
   * header strings point into t, extra and static storage, all of which
   * outlive the template's use. */
  t->hdrs = h3c_xcalloc(6 + extra->n, sizeof(*t->hdrs));
  add(t, ":method", t->method);
  add(t, ":scheme", "https");
  add(t, ":authority", t->u.authority);
  add(t, ":path", t->u.path);
  if (h3c_kvlist_get(extra, "user-agent") == NULL)
    add(t, "user-agent", agent);
  if (body && body->kind == H3C_SRC_FILE &&
      h3c_kvlist_get(extra, "content-length") == NULL) {
    snprintf(t->clen, sizeof(t->clen), "%llu", (unsigned long long)body->size);
    add(t, "content-length", t->clen);
  }
  for (size_t i = 0; i < extra->n; i++)
    add(t, extra->v[i].name, extra->v[i].value);
  return 0;
}

void h3c_tmpl_free(h3c_tmpl *t) {
  free(t->url);
  free(t->method);
  free(t->hdrs);
  h3c_url_free(&t->u);
  memset(t, 0, sizeof(*t));
}
