/* The HTML page of a directory listing. Pure: the caller reads the
 * directory; this module filters names, escapes and renders. */
#ifndef H3Q_HANDLERS_DIR_LISTING_H
#define H3Q_HANDLERS_DIR_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Pages larger than this are cut short with a "truncated" line. */
#define DIR_LISTING_MAX_BYTES (4u << 20)

typedef struct dir_listing_entry {
  const char *name;
  bool is_dir;
  uint64_t size; /* shown for files */
} dir_listing_entry;

/* A growing NUL-terminated string with a size limit. Zero it, set limit,
 * append, free(data). */
typedef struct dir_listing_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t limit; /* data never exceeds limit bytes, NUL included */
  bool oom;     /* an allocation failed: the content is incomplete */
  bool full;    /* an append would have passed limit and was dropped */
} dir_listing_buf;

/* False for names a listing must not show: empty, "." and "..", and names
 * with a control character (0x01-0x1f, 0x7f), '/' or '\' (the static
 * handler never serves a name with a backslash). */
bool dir_listing_name_is_safe(const char *name);

/* Appends the percent-encoding of name as one path segment: every byte
 * except ALPHA, DIGIT, '-', '.', '_' and '~' becomes %XX (upper-case hex).
 * An append that does not fit whole is dropped. */
void dir_listing_pct(dir_listing_buf *out, const char *name);

/* Appends name with &, <, >, " and ' replaced by character references. */
void dir_listing_html(dir_listing_buf *out, const char *name);

/* Renders the page for a directory whose URL path is title (shown escaped)
 * into *out (initialised here; free out->data). Entries are sorted by name
 * in place (byte order); directories get a trailing '/' and files their
 * size in bytes. parent adds a "../" link; truncated adds a line saying
 * entries were left out. A page over DIR_LISTING_MAX_BYTES keeps the
 * entries that fit and is marked truncated. Returns false when memory ran
 * out (out->data is then freed and NULL). */
bool dir_listing_render(const char *title, dir_listing_entry *entries,
                        size_t count, bool parent, bool truncated,
                        dir_listing_buf *out);

#endif
