/* Directory listing pages: name filtering, escaping, rendering. */
#include "handlers/dir_listing.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room kept for the page's closing lines while entries are appended. */
#define FOOTER_RESERVE 256

static const char page_head[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<title>Index of ";
static const char page_mid[] = "</title></head>\n<body><h1>Index of ";
static const char page_list[] = "</h1>\n<ul>\n";
static const char page_tail[] = "</ul>\n</body></html>\n";
static const char truncated_line[] =
    "<li><em>listing truncated: more entries exist</em></li>\n";

/* Makes room for more bytes plus the NUL, or sets full or oom. */
static bool buf_reserve(dir_listing_buf *b, size_t more) {
  if (b->oom || b->full) {
    return false;
  }
  if (b->len + 1 > b->limit || more > b->limit - b->len - 1) {
    b->full = true;
    return false;
  }
  size_t need = b->len + more + 1;
  if (need <= b->cap) {
    return true;
  }
  size_t cap = b->cap < 4096 ? 4096 : b->cap * 2;
  cap = cap < need ? need : cap;
  cap = cap > b->limit ? b->limit : cap;
  char *data = realloc(b->data, cap);
  if (data == NULL) {
    b->oom = true;
    return false;
  }
  b->data = data;
  b->cap = cap;
  return true;
}

static void buf_append(dir_listing_buf *b, const char *s, size_t n) {
  if (buf_reserve(b, n)) {
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
  }
}

static void buf_puts(dir_listing_buf *b, const char *s) {
  buf_append(b, s, strlen(s));
}

bool dir_listing_name_is_safe(const char *name) {
  if (name == NULL || name[0] == '\0' || strcmp(name, ".") == 0 ||
      strcmp(name, "..") == 0) {
    return false;
  }
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\') {
      return false;
    }
  }
  return true;
}

static bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

void dir_listing_pct(dir_listing_buf *out, const char *name) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    n += unreserved(*p) ? 1 : 3;
  }
  if (!buf_reserve(out, n)) {
    return;
  }
  char *o = out->data + out->len;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    if (unreserved(*p)) {
      *o++ = (char)*p;
    } else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  out->len += n;
  out->data[out->len] = '\0';
}

static const char *html_entity(char c) {
  switch (c) {
  case '&':
    return "&amp;";
  case '<':
    return "&lt;";
  case '>':
    return "&gt;";
  case '"':
    return "&quot;";
  case '\'':
    return "&#39;";
  default:
    return NULL;
  }
}

void dir_listing_html(dir_listing_buf *out, const char *name) {
  size_t n = 0;
  for (const char *p = name; *p; p++) {
    const char *e = html_entity(*p);
    n += e ? strlen(e) : 1;
  }
  if (!buf_reserve(out, n)) {
    return;
  }
  char *o = out->data + out->len;
  for (const char *p = name; *p; p++) {
    const char *e = html_entity(*p);
    size_t len = e ? strlen(e) : 1;
    memcpy(o, e ? e : p, len);
    o += len;
  }
  out->len += n;
  out->data[out->len] = '\0';
}

static int entry_cmp(const void *a, const void *b) {
  const dir_listing_entry *x = a, *y = b;
  return strcmp(x->name, y->name);
}

/* One <li>. Either all of it is appended or none (the length is restored
 * when the limit cut it short). */
static bool render_entry(dir_listing_buf *b, const dir_listing_entry *e) {
  size_t mark = b->len;
  char size[32] = "";
  if (!e->is_dir) {
    snprintf(size, sizeof size, " %" PRIu64 " bytes", e->size);
  }
  buf_puts(b, "<li><a href=\"");
  dir_listing_pct(b, e->name);
  buf_puts(b, e->is_dir ? "/\">" : "\">");
  dir_listing_html(b, e->name);
  buf_puts(b, e->is_dir ? "/</a>" : "</a>");
  buf_puts(b, size);
  buf_puts(b, "</li>\n");
  if (b->full && b->data != NULL) {
    b->len = mark;
    b->data[mark] = '\0';
  }
  return !b->full && !b->oom;
}

bool dir_listing_render(const char *title, dir_listing_entry *entries,
                        size_t count, bool parent, bool truncated,
                        dir_listing_buf *out) {
  *out = (dir_listing_buf){.limit = DIR_LISTING_MAX_BYTES - FOOTER_RESERVE};
  if (count > 0) {
    qsort(entries, count, sizeof *entries, entry_cmp);
  }
  buf_puts(out, page_head);
  dir_listing_html(out, title);
  buf_puts(out, page_mid);
  dir_listing_html(out, title);
  buf_puts(out, page_list);
  if (parent) {
    buf_puts(out, "<li><a href=\"../\">../</a></li>\n");
  }
  for (size_t i = 0; i < count && render_entry(out, &entries[i]); i++) {
  }
  truncated |= out->full;
  out->full = false;
  out->limit = DIR_LISTING_MAX_BYTES;
  if (truncated) {
    buf_puts(out, truncated_line);
  }
  buf_puts(out, page_tail);
  if (out->oom || out->full || out->data == NULL) {
    free(out->data);
    *out = (dir_listing_buf){0};
    return false;
  }
  return true;
}
