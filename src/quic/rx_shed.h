/* Shedding under a receive backlog. While the socket's receive queue has
 * a backlog and the Retry budget of the current read is spent
 * (quic/admission.h), every Initial that asks for a new connection is
 * dropped anyway; shedding drops it from its first bytes, before quiche
 * parses its header and before our SCID for it is derived (an HMAC, the
 * largest cost of such a drop), so the queue drains sooner and the
 * packets of established connections waiting behind the flood are
 * reached sooner. Only a QUIC v1 Initial without a token, whose DCID
 * names no connection of ours, is shed: a client coming back with a
 * Retry token, and the later Initials of a handshake in progress, take
 * the full path. */
#ifndef H3Q_QUIC_RX_SHED_H
#define H3Q_QUIC_RX_SHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quic/endpoint.h"

/* Whether buf is a QUIC v1 Initial with an empty token (RFC 9000 §17.2.2);
 * then *dcid and *dcid_len locate its DCID within buf. Anything else,
 * including a datagram too short to tell, is false. */
bool rx_is_tokenless_initial(const uint8_t *buf, size_t len,
                             const uint8_t **dcid, size_t *dcid_len);

/* Whether the datagram just read from ep's socket is shed (counted as
 * received and as dropped for overload); false: handle it. */
bool rx_shed(quic_endpoint *ep, const uint8_t *buf, size_t len);

#endif
