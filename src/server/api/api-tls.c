/* api-tls.c - GET /v1/tls/ca: the CA certificate (PEM) of the server's own
 * CA (or --tls-ca), unauthenticated. Agents hash it against the ca_sha256
 * of their config before trusting it (httpc_pin_ca); a CLI user can fetch
 * it with --insecure and compare its fingerprint with the server's log. */
#include <string.h>

#include "api.h"
#include "tls.h"

void
api_tls_ca(struct req *rq)
{
	const struct tls *t = rq->srv->tls;

	if (t == NULL || t->ca_pem == NULL)
		return reply_errf(rq, HERR_NOTFOUND, "", "this server has no CA of its own to give "
				  "out (an operator certificate without --tls-ca)");
	reply_raw(rq, 200, "application/x-pem-file", t->ca_pem, strlen(t->ca_pem), true);
}
