#include "h3q.h"
#include "quic/quiche_ext.h"

int h3q_generate_self_signed_cert(const char *cert_path, const char *key_path,
                                  const char *host, unsigned days) {
  if (!cert_path || !key_path || !host || days == 0 || days > 3650)
    return H3Q_EINVAL;
#ifdef H3Q_SYSTEM_QUICHE
  return H3Q_ETLS; /* the shim is not built against a system quiche */
#else
  switch (h3qshim_generate_self_signed(cert_path, key_path, host, days)) {
  case 0:
    return H3Q_OK;
  case -1:
    return H3Q_EINVAL;
  case -3:
    return H3Q_EIO;
  default:
    return H3Q_ETLS;
  }
#endif
}
