/* certs.c — see certs.h. */
#include "certs.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOUR 3600L
#define DAY (24 * HOUR)
#define GOOD_SAN "DNS:localhost,IP:127.0.0.1,IP:::1"

/* What one certificate is: a CA when san is NULL, else a server certificate. */
struct spec {
	const char *name; /* file name without extension */
	const char *cn;
	const char *san;
	long not_before, not_after; /* seconds from now */
	bool by_other;              /* signed by the unknown CA */
};

static const struct spec ca_spec = {"ca", "taskrouterd test CA", NULL, -7 * DAY, 30 * DAY, false};
static const struct spec other_spec = {
	"other-ca", "taskrouterd unknown CA", NULL, -7 * DAY, 30 * DAY, false};
static const struct spec leaf_specs[] = {
	{"good", "localhost", GOOD_SAN, -HOUR, 2 * DAY, false},
	{"wrong", "wrong.example", "DNS:wrong.example", -HOUR, 2 * DAY, false},
	{"expired", "localhost (expired)", GOOD_SAN, -3 * DAY, -2 * DAY, false},
	{"untrusted", "localhost (untrusted)", GOOD_SAN, -HOUR, 2 * DAY, true},
};

static int print_err_line(const char *str, size_t len, void *u) {
	(void)u;
	fprintf(stderr, "#   %.*s", (int)len, str);
	return 1;
}

/* Print what failed and libcrypto's error queue (emptying it) as TAP comments. */
static int crypto_fail(const char *what) {
	fprintf(stderr, "# certs: %s failed\n", what);
	ERR_print_errors_cb(print_err_line, NULL);
	return -EIO;
}

static int make_key(EVP_PKEY **ret) {
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!k) {
		return crypto_fail("EC P-256 key generation");
	}
	*ret = k;
	return 0;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : crypto_fail(OBJ_nid2sn(nid));
}

static int add_name(X509_NAME *n, const char *field, const char *value) {
	return X509_NAME_add_entry_by_txt(
		       n, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1, 0)
		       ? 0
		       : crypto_fail("subject name");
}

/* A certificate for key after s, signed by issuer (NULL: self-signed with key). */
static int make_cert(
	const struct spec *s, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, X509 **ret) {
	X509 *x = X509_new();
	BIGNUM *serial = BN_new();
	X509_NAME *subj;
	X509V3_CTX ctx;
	int r = -ENOMEM;

	if (!x || !serial) {
		goto out;
	}
	r = -EIO;
	/* a random positive 63-bit serial: certificates of different runs never collide */
	if (!X509_set_version(x, X509_VERSION_3) ||
		!BN_rand(serial, 63, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
		!BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) ||
		!X509_gmtime_adj(X509_getm_notBefore(x), s->not_before) ||
		!X509_gmtime_adj(X509_getm_notAfter(x), s->not_after) || !X509_set_pubkey(x, key)) {
		r = crypto_fail("certificate fields");
		goto out;
	}
	subj = X509_get_subject_name(x);
	if ((r = add_name(subj, "O", "taskrouterd tests")) < 0 ||
		(r = add_name(subj, "CN", s->cn)) < 0) {
		goto out;
	}
	if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj)) {
		r = crypto_fail("issuer name");
		goto out;
	}

	/* the subject key identifier needs the public key set; the authority key identifier
	 * comes from the issuer's */
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (!s->san) {
		if ((r = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
			(r = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
			(r = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) < 0) {
			goto out;
		}
	} else if ((r = add_ext(x, &ctx, NID_basic_constraints, "CA:FALSE")) < 0 ||
		   (r = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature")) < 0 ||
		   (r = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth")) < 0 ||
		   (r = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) < 0 ||
		   (r = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) < 0 ||
		   (r = add_ext(x, &ctx, NID_subject_alt_name, s->san)) < 0) {
		goto out;
	}
	if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0) {
		r = crypto_fail("signing");
		goto out;
	}
	*ret = x;
	x = NULL;
	r = 0;
out:
	BN_free(serial);
	X509_free(x);
	return r;
}

/* Write cert (or, with key, the key: mode 0600) to DIR/NAME.EXT; *ret_path gets the path. */
static int save(const char *dir, const char *name, X509 *cert, EVP_PKEY *key, char **ret_path) {
	char *path = NULL;
	FILE *f = NULL;
	int fd, r;

	if (asprintf(&path, "%s/%s.%s", dir, name, key ? "key" : "pem") < 0) {
		return -ENOMEM;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
	/* an existing file keeps its mode through O_CREAT */
	if (fd < 0 || (key && fchmod(fd, 0600) < 0) || !(f = fdopen(fd, "w"))) {
		r = -errno;
		fprintf(stderr, "# certs: %s: %s\n", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		free(path);
		return r;
	}
	r = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
	r = r ? 0 : crypto_fail("PEM output");
	if (fclose(f) != 0 && r == 0) {
		r = -errno;
		fprintf(stderr, "# certs: %s: %s\n", path, strerror(errno));
	}
	if (r < 0) {
		free(path);
		return r;
	}
	*ret_path = path;
	return 0;
}

/* Make a key, a certificate signed by issuer (NULL: self-signed), and save them (the key only
 * when ret_key is given). The certificate and the key are kept when ret_x / ret_k are given. */
static int make_one(const struct trt_certs *c, const struct spec *s, X509 *issuer,
	EVP_PKEY *issuer_key, char **ret_cert, char **ret_key, X509 **ret_x, EVP_PKEY **ret_k) {
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	int r;

	if ((r = make_key(&k)) < 0 || (r = make_cert(s, k, issuer, issuer_key, &x)) < 0 ||
		(r = save(c->dir, s->name, x, NULL, ret_cert)) < 0 ||
		(ret_key && (r = save(c->dir, s->name, NULL, k, ret_key)) < 0)) {
		goto out;
	}
	if (ret_x) {
		*ret_x = x;
		x = NULL;
	}
	if (ret_k) {
		*ret_k = k;
		k = NULL;
	}
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

int trt_certs_make(const char *dir, struct trt_certs *ret) {
	struct trt_certs c = {0};
	char **slots[][2] = {
		{&c.good_cert, &c.good_key},
		{&c.wrong_cert, &c.wrong_key},
		{&c.expired_cert, &c.expired_key},
		{&c.untrusted_cert, &c.untrusted_key},
	};
	EVP_PKEY *ca_key = NULL, *other_key = NULL;
	X509 *ca = NULL, *other = NULL;
	int r;

	_Static_assert(
		sizeof(slots) / sizeof(slots[0]) == sizeof(leaf_specs) / sizeof(leaf_specs[0]),
		"one pair of paths per leaf");
	c.dir = strdup(dir);
	if (!c.dir) {
		return -ENOMEM;
	}
	if ((r = make_one(&c, &ca_spec, NULL, NULL, &c.ca, NULL, &ca, &ca_key)) < 0 ||
		(r = make_one(&c, &other_spec, NULL, NULL, &c.other_ca, NULL, &other, &other_key)) <
			0) {
		goto out;
	}
	for (size_t i = 0; i < sizeof(leaf_specs) / sizeof(leaf_specs[0]); i++) {
		const struct spec *s = &leaf_specs[i];
		r = make_one(&c, s, s->by_other ? other : ca, s->by_other ? other_key : ca_key,
			slots[i][0], slots[i][1], NULL, NULL);
		if (r < 0) {
			goto out;
		}
	}
	*ret = c;
	memset(&c, 0, sizeof(c));
out:
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	trt_certs_done(&c);
	return r;
}

void trt_certs_done(struct trt_certs *c) {
	free(c->dir);
	free(c->ca);
	free(c->good_cert);
	free(c->good_key);
	free(c->wrong_cert);
	free(c->wrong_key);
	free(c->expired_cert);
	free(c->expired_key);
	free(c->other_ca);
	free(c->untrusted_cert);
	free(c->untrusted_key);
	memset(c, 0, sizeof(*c));
}
