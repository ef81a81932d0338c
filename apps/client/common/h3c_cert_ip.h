/* Certificate check for IP-literal hosts. quiche/BoringSSL only match DNS
 * names (X509_VERIFY_PARAM_set1_host), and TLS forbids IP literals in SNI,
 * so for https://127.0.0.1/ we connect without a server name (the chain is
 * still verified) and match the address against the leaf certificate's
 * iPAddress subjectAltName entries ourselves. */
#ifndef H3C_CERT_IP_H
#define H3C_CERT_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when the DER certificate has an iPAddress SAN equal to ip (a textual
 * IPv4 or IPv6 address). Malformed DER yields false. */
bool h3c_cert_matches_ip(const uint8_t *der, size_t len, const char *ip);

#endif
