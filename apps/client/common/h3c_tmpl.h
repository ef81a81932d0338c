/* A request template: one URL's method, header list and body, built once
 * and shared by every repetition of that request. */
#ifndef H3C_TMPL_H
#define H3C_TMPL_H

#include "h3c_args.h"
#include "h3c_body_src.h"
#include "h3c_url.h"

#include <stdbool.h>

#include <quiche.h>

typedef struct h3c_tmpl {
  char *url; /* as given on the command line */
  h3c_url u; /* parsed */
  char *method;
  bool is_head;           /* responses carry no body */
  quiche_h3_header *hdrs; /* pseudo-headers first, then the rest */
  size_t nhdrs;
  char clen[24];       /* content-length value storage */
  h3c_body_spec *body; /* NULL: no request body; not owned */
} h3c_tmpl;

/* Builds t. extra holds -H headers (lowercased names); agent is the
 * user-agent value unless extra has one. Returns 0, or -1 with *err set. */
int h3c_tmpl_init(h3c_tmpl *t, const char *url, const char *method,
                  const h3c_kvlist *extra, h3c_body_spec *body,
                  const char *agent, const char **err);
void h3c_tmpl_free(h3c_tmpl *t);

#endif
