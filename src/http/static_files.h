/* Serving files from a directory, built on the public response API only.
 * Full files for GET and HEAD (Range and conditionals come later). */
#ifndef H3Q_HTTP_STATIC_FILES_H
#define H3Q_HTTP_STATIC_FILES_H

#include "h3q.h"

typedef struct static_root static_root;

/* Opens dir as a root. Returns NULL with *err set to H3Q_EINVAL (not a
 * directory) or H3Q_ENOMEM. */
static_root *static_root_new(const char *dir, int *err);
void static_root_free(static_root *root);

/* An h3q_handler; user is a static_root. Serves h3q_request_path(req):
 * 200 with content-type, content-length, last-modified; 404 for missing
 * files and for paths escaping the root (.. segments, NUL, encoded slashes,
 * symlinks out); directories serve index.html or 404; methods other than GET
 * and HEAD get 405. Streams with bounded memory (one chunk per stream). */
int static_files_handler(h3q_request *req, h3q_response *res, void *user);

#endif
