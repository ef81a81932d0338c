/* Header field helpers: RFC 9110 token and field-value checks (RFC 9114
 * section 4.2 makes invalid ones malformed), and content types by file
 * extension for static files. */
#include "http/headers.h"

#include <stdlib.h>
#include <string.h>

/* RFC 9110 section 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" /
 * "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
static bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool header_name_is_token(const char *name, size_t len) {
  if (name == NULL || len == 0) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    if (!is_tchar((unsigned char)name[i])) {
      return false;
    }
  }
  return true;
}

/* True when no byte is an upper-case ASCII letter (HTTP/3 field names must
 * be lower case, RFC 9114 section 4.2); token rules are checked apart. */
bool header_name_is_lower(const char *name, size_t len) {
  if (name == NULL) {
    return len == 0;
  }
  for (size_t i = 0; i < len; i++) {
    if (name[i] >= 'A' && name[i] <= 'Z') {
      return false;
    }
  }
  return true;
}

static bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

bool header_value_is_valid(const char *value, size_t len) {
  if (len == 0) {
    return true; /* an empty value is allowed */
  }
  if (value == NULL || is_ows(value[0]) || is_ows(value[len - 1])) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    if (value[i] == '\0' || value[i] == '\r' || value[i] == '\n') {
      return false;
    }
  }
  return true;
}

static unsigned char lower_byte(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

bool ascii_case_equal(const char *a, size_t alen, const char *b, size_t blen) {
  if (alen != blen) {
    return false;
  }
  for (size_t i = 0; i < alen; i++) {
    if (lower_byte((unsigned char)a[i]) != lower_byte((unsigned char)b[i])) {
      return false;
    }
  }
  return true;
}

void ascii_lower(char *s, size_t len) {
  for (size_t i = 0; s != NULL && i < len; i++) {
    s[i] = (char)lower_byte((unsigned char)s[i]);
  }
}

/* ------------------------------------------------------------ MIME types */

typedef struct mime_entry {
  const char *ext; /* lower case, without the dot */
  const char *type;
} mime_entry;

#define UTF8 "; charset=utf-8"

/* Sorted by ext (strcmp order) for bsearch; test_headers looks up every
 * entry, so a misplaced one makes it fail. */
static const mime_entry mime_table[] = {
    {"avif", "image/avif"},
    {"css", "text/css" UTF8},
    {"csv", "text/csv" UTF8},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html" UTF8},
    {"html", "text/html" UTF8},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript" UTF8}, /* RFC 9239 */
    {"json", "application/json"},   /* always UTF-8 (RFC 8259) */
    {"map", "application/json"},    /* source maps */
    {"md", "text/markdown" UTF8},
    {"mjs", "text/javascript" UTF8},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"ogg", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain" UTF8},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml"},
    {"zip", "application/zip"},
};

#define MIME_DEFAULT "application/octet-stream"
#define MIME_EXT_MAX 8 /* longer than any extension in the table */

static int mime_cmp(const void *key, const void *elem) {
  return strcmp((const char *)key, ((const mime_entry *)elem)->ext);
}

/* The extension is what follows the last '.' of the last path component;
 * a leading dot (".bashrc") marks a hidden file, not an extension. */
static const char *path_extension(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  if (dot == NULL || dot == base) {
    return NULL;
  }
  return dot + 1;
}

const char *mime_type_for_path(const char *path) {
  const char *ext = path ? path_extension(path) : NULL;
  size_t len = ext ? strlen(ext) : 0;
  if (len == 0 || len >= MIME_EXT_MAX) {
    return MIME_DEFAULT;
  }
  char key[MIME_EXT_MAX];
  memcpy(key, ext, len + 1);
  ascii_lower(key, len);
  const mime_entry *e =
      bsearch(key, mime_table, sizeof mime_table / sizeof mime_table[0],
              sizeof mime_table[0], mime_cmp);
  return e ? e->type : MIME_DEFAULT;
}
