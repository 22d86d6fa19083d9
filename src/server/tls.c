/* tls.c - the server's certificates; see tls.h.
 *
 * GnuTLS, not mbedTLS, makes the certificates: libmicrohttpd (Debian's)
 * serves TLS with GnuTLS, so the server process already loads it, and its
 * x509 API checks a certificate against its key the same way the serving
 * side will. The static agent (mbedTLS) only ever verifies. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "buf.h"
#include "log.h"
#include "server.h"
#include "tls.h"
#include "util.h"
#include "xalloc.h"

#define PEM_MAX (256u << 10)       /* a cert chain or key file */
#define CA_DAYS (20 * 365)
#define CERT_DAYS (5 * 365)

int
tls_mode_parse(const char *s, enum tls_mode *out)
{
	if (strcmp(s, "auto") == 0)
		*out = TLS_AUTO;
	else if (strcmp(s, "always") == 0)
		*out = TLS_ALWAYS;
	else if (strcmp(s, "never") == 0)
		*out = TLS_NEVER;
	else
		return -1;
	return 0;
}

bool
tls_for_addr(enum tls_mode mode, const char *ip, bool bridge)
{
	if (mode != TLS_AUTO)
		return mode == TLS_ALWAYS;
	/* 127.0.0.0/8 never leaves the machine, nor does a local bridge */
	return !(bridge || strncmp(ip, "127.", 4) == 0);
}

static size_t
san_add(char out[][TLS_SAN_LEN], size_t n, size_t max, const char *name)
{
	if (name == NULL || *name == '\0' || strcmp(name, "0.0.0.0") == 0 ||
	    strlen(name) >= TLS_SAN_LEN || n == max)
		return n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(out[i], name) == 0)
			return n;
	snprintf(out[n], TLS_SAN_LEN, "%s", name);
	return n + 1;
}

size_t
tls_sans(const char *hostname, const char *const *listen_ips, size_t nips,
	 const char *const *extra, size_t nextra, char out[][TLS_SAN_LEN], size_t max)
{
	size_t n = 0;

	n = san_add(out, n, max, "127.0.0.1");
	n = san_add(out, n, max, "::1");
	n = san_add(out, n, max, "localhost");
	n = san_add(out, n, max, hostname);
	for (size_t i = 0; i < nips; i++)
		n = san_add(out, n, max, listen_ips[i]);
	for (size_t i = 0; i < nextra; i++)
		n = san_add(out, n, max, extra[i]);
	return n;
}

/* --- files ---------------------------------------------------------- */

static char *
pem_read(const char *path, const char *what, struct herr *err)
{
	size_t len;
	char *p = file_read(path, PEM_MAX, &len);

	if (p == NULL)
		herr_set(err, HERR_INVALID, "cannot read %s '%s': %s", what, path, strerror(errno));
	return p;
}

/* Checks that key_pem is cert_pem's key (what serving would find out at
 * the first handshake). */
static int
pair_check(const char *cert_pem, const char *key_pem, const char *cert_file,
	   const char *key_file, struct herr *err)
{
	gnutls_certificate_credentials_t cr;
	gnutls_datum_t c = { (unsigned char *)cert_pem, (unsigned)strlen(cert_pem) };
	gnutls_datum_t k = { (unsigned char *)key_pem, (unsigned)strlen(key_pem) };
	int rc;

	if (gnutls_certificate_allocate_credentials(&cr) < 0)
		return herr_set(err, HERR_UNAVAIL, "gnutls: out of memory");
	rc = gnutls_certificate_set_x509_key_mem(cr, &c, &k, GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(cr);
	if (rc < 0)
		return herr_set(err, HERR_INVALID, "TLS certificate '%s' with key '%s': %s",
				cert_file, key_file, gnutls_strerror(rc));
	return 0;
}

/* --- making certificates ---------------------------------------------- */

static char *
datum_str(gnutls_datum_t *d)
{
	char *s = xmalloc(d->size + 1);

	memcpy(s, d->data, d->size);
	s[d->size] = '\0';
	gnutls_free(d->data);
	return s;
}

#define GT(call) do { if ((rc = (call)) < 0) goto fail; } while (0)

/* A new P-256 key and a certificate for it: a CA (issuer NULL: self-signed)
 * or a server certificate with sans, signed by issuer. */
static int
cert_make(const char *cn, gnutls_x509_crt_t issuer, gnutls_x509_privkey_t issuer_key,
	  char sans[][TLS_SAN_LEN], size_t nsans, char **cert_pem, char **key_pem,
	  struct herr *err)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t d;
	unsigned char serial[16], kid[64];
	size_t kidlen = sizeof(kid);
	time_t now = time(NULL);
	bool ca = issuer == NULL;
	int rc;

	GT(gnutls_x509_privkey_init(&key));
	GT(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
	GT(gnutls_x509_crt_init(&crt));
	GT(gnutls_x509_crt_set_version(crt, 3));
	GT(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)));
	serial[0] &= 0x7f;   /* positive */
	GT(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)));
	GT(gnutls_x509_crt_set_activation_time(crt, now - 3600));
	GT(gnutls_x509_crt_set_expiration_time(crt, now + (time_t)(ca ? CA_DAYS : CERT_DAYS) * 86400));
	GT(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
					 (unsigned)strlen(cn)));
	GT(gnutls_x509_crt_set_key(crt, key));
	GT(gnutls_x509_crt_get_key_id(crt, 0, kid, &kidlen));
	GT(gnutls_x509_crt_set_subject_key_id(crt, kid, kidlen));
	if (ca) {
		GT(gnutls_x509_crt_set_basic_constraints(crt, 1, 0));
		GT(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN));
		GT(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0));
	} else {
		GT(gnutls_x509_crt_set_basic_constraints(crt, 0, -1));
		GT(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE));
		GT(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
		for (size_t i = 0; i < nsans; i++) {
			unsigned char ip[16];

			if (inet_pton(AF_INET, sans[i], ip) == 1)
				GT(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4,
									 GNUTLS_FSAN_APPEND));
			else if (inet_pton(AF_INET6, sans[i], ip) == 1)
				GT(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16,
									 GNUTLS_FSAN_APPEND));
			else
				GT(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, sans[i],
									 (unsigned)strlen(sans[i]),
									 GNUTLS_FSAN_APPEND));
		}
		kidlen = sizeof(kid);
		GT(gnutls_x509_crt_get_subject_key_id(issuer, kid, &kidlen, NULL));
		GT(gnutls_x509_crt_set_authority_key_id(crt, kid, kidlen));
		GT(gnutls_x509_crt_sign2(crt, issuer, issuer_key, GNUTLS_DIG_SHA256, 0));
	}
	GT(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d));
	*cert_pem = datum_str(&d);
	GT(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &d));
	*key_pem = datum_str(&d);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return 0;
fail:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return herr_set(err, HERR_UNAVAIL, "cannot make a %s certificate: %s",
			ca ? "CA" : "server", gnutls_strerror(rc));
}

static int
pem_write(const char *dir, const char *name, const char *pem, int mode, struct herr *err)
{
	char path[1200];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_write_atomic(path, pem, strlen(pem), mode) < 0)
		return herr_set(err, HERR_STORE, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}

static char *
pem_load(const char *dir, const char *name)
{
	char path[1200];
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return file_read(path, PEM_MAX, &len);
}

/* The names list as kept in DATA/tls/server.names: one a line. */
static char *
names_text(char sans[][TLS_SAN_LEN], size_t n)
{
	struct buf b;

	buf_init(&b, (size_t)TLS_SANS_MAX * TLS_SAN_LEN + 1);
	for (size_t i = 0; i < n; i++)
		buf_addf(&b, "%s\n", sans[i]);
	if (b.p == NULL)
		return xstrdup("");
	return b.p;   /* owned by the caller now */
}

/* DATA/tls: the CA (made once, kept), the server certificate (made again
 * when the names it must carry change). */
static int
own_certs(struct server *s, struct tls *t, char sans[][TLS_SAN_LEN], size_t nsans,
	  struct herr *err)
{
	char dir[1100];
	char *ca_key = NULL, *names = NULL, *old_names = NULL;
	gnutls_x509_crt_t ca = NULL;
	gnutls_x509_privkey_t cakey = NULL;
	gnutls_datum_t d;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/tls", s->data_dir);
	if (mkdir_p(dir, 0700) < 0)
		return herr_set(err, HERR_STORE, "cannot make '%s': %s", dir, strerror(errno));
	t->ca_pem = pem_load(dir, "ca.pem");
	ca_key = pem_load(dir, "ca.key");
	if (t->ca_pem == NULL || ca_key == NULL) {
		free(t->ca_pem);
		free(ca_key);
		t->ca_pem = ca_key = NULL;
		if (cert_make("herd CA", NULL, NULL, NULL, 0, &t->ca_pem, &ca_key, err) < 0 ||
		    pem_write(dir, "ca.key", ca_key, 0600, err) < 0 ||
		    pem_write(dir, "ca.pem", t->ca_pem, 0644, err) < 0)
			goto out;
		log_info("tls: made a new CA in %s/ca.pem", dir);
	}
	names = names_text(sans, nsans);
	old_names = pem_load(dir, "server.names");
	t->cert_pem = pem_load(dir, "server.pem");
	t->key_pem = pem_load(dir, "server.key");
	if (t->cert_pem && t->key_pem && old_names && strcmp(names, old_names) == 0)
		goto out;
	free(t->cert_pem);
	free(t->key_pem);
	t->cert_pem = t->key_pem = NULL;
	d.data = (unsigned char *)t->ca_pem;
	d.size = (unsigned)strlen(t->ca_pem);
	if (gnutls_x509_crt_init(&ca) < 0 || gnutls_x509_crt_import(ca, &d, GNUTLS_X509_FMT_PEM) < 0) {
		rc = herr_set(err, HERR_INVALID, "cannot read the CA certificate '%s/ca.pem'", dir);
		goto out;
	}
	d.data = (unsigned char *)ca_key;
	d.size = (unsigned)strlen(ca_key);
	if (gnutls_x509_privkey_init(&cakey) < 0 ||
	    gnutls_x509_privkey_import(cakey, &d, GNUTLS_X509_FMT_PEM) < 0) {
		rc = herr_set(err, HERR_INVALID, "cannot read the CA key '%s/ca.key'", dir);
		goto out;
	}
	if (cert_make("herd server", ca, cakey, sans, nsans, &t->cert_pem, &t->key_pem, err) < 0 ||
	    pem_write(dir, "server.key", t->key_pem, 0600, err) < 0 ||
	    pem_write(dir, "server.pem", t->cert_pem, 0644, err) < 0 ||
	    pem_write(dir, "server.names", names, 0644, err) < 0)
		goto out;
	log_info("tls: made the server certificate %s/server.pem", dir);
out:
	if (ca)
		gnutls_x509_crt_deinit(ca);
	if (cakey)
		gnutls_x509_privkey_deinit(cakey);
	free(ca_key);
	free(names);
	free(old_names);
	return err->code ? err->code : rc;
}

int
tls_setup(struct server *s, const struct tls_opts *o, const char *const *listen_ips,
	  size_t nips, struct herr *err)
{
	struct tls *t = xcalloc(1, sizeof(*t));
	unsigned char fp[TLSFP_LEN];

	s->tls = t;
	t->mode = o->mode;
	if (o->cert_file || o->key_file) {
		if (o->cert_file == NULL || o->key_file == NULL)
			return herr_field(err, HERR_INVALID, o->cert_file ? "--tls-key" : "--tls-cert",
					  "--tls-cert and --tls-key go together");
		if ((t->cert_pem = pem_read(o->cert_file, "--tls-cert", err)) == NULL ||
		    (t->key_pem = pem_read(o->key_file, "--tls-key", err)) == NULL ||
		    pair_check(t->cert_pem, t->key_pem, o->cert_file, o->key_file, err) < 0)
			return err->code;
		if (o->ca_file && (t->ca_pem = pem_read(o->ca_file, "--tls-ca", err)) == NULL)
			return err->code;
	} else {
		char sans[TLS_SANS_MAX][TLS_SAN_LEN];
		char host[256] = "";
		size_t n;

		if (o->ca_file)
			return herr_field(err, HERR_INVALID, "--tls-ca",
					  "--tls-ca goes with --tls-cert/--tls-key (else the CA is herd's own)");
		gethostname(host, sizeof(host) - 1);
		n = tls_sans(host, listen_ips, nips, o->names, (size_t)o->nnames, sans, TLS_SANS_MAX);
		if (own_certs(s, t, sans, n, err) < 0)
			return err->code;
	}
	if (t->ca_pem) {
		if (tlsfp_of_pem(t->ca_pem, strlen(t->ca_pem), fp) < 0)
			return herr_set(err, HERR_INVALID, "%s is not a PEM certificate",
					o->ca_file ? o->ca_file : "DATA/tls/ca.pem");
		tlsfp_hex(fp, t->ca_sha256);
		log_info("tls: CA fingerprint (SHA-256) %s", t->ca_sha256);
	}
	return 0;
}

void
tls_free(struct server *s)
{
	struct tls *t = s->tls;

	if (t == NULL)
		return;
	free(t->cert_pem);
	free(t->key_pem);
	free(t->ca_pem);
	free(t);
	s->tls = NULL;
}
