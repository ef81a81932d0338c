/* Observability of the server: request metrics and the access log,
 * quiche's debug log, the metrics endpoint (metrics.c). */
#ifndef H3Q_CORE_OBSERVE_H
#define H3Q_CORE_OBSERVE_H

#include <stddef.h>

#include "h3/session.h"
#include "h3q.h"

/* h3_config.on_request_done: counts the request and writes its access
 * log line. */
void server_on_request_done(const h3q_request *req, const h3_request_done *d,
                            void *user);

/* The access log (access_log_path): opened at creation (H3Q_EIO with a
 * message naming the field when it cannot be), flushed by the
 * housekeeping tick, closed by h3q_server_free. */
int server_open_access_log(h3q_server *srv, char *err, size_t errlen);
void server_flush_access_log(h3q_server *srv);
void server_close_access_log(h3q_server *srv);

/* At trace level, routes quiche's debug log through h3q's (once per
 * process). */
void server_route_quiche_log(void);

/* The metrics listener (metrics_addr): started at creation, stopped by
 * h3q_server_free. */
int server_start_metrics(h3q_server *srv, char *err, size_t errlen);
void server_stop_metrics(h3q_server *srv);

#endif
