/*
 * certs.h — throwaway X.509 certificates for the TLS tests, made at test time with libcrypto
 * (no openssl CLI, no config files): a test CA, server certificates it signs (a good one, one
 * for the wrong host, an expired one), and a second CA nobody trusts with a certificate of its
 * own. EC P-256 keys and SHA-256 signatures, so that making them is quick under valgrind.
 *
 * Every field of struct trt_certs is the path of a PEM file in `dir`; keys are unencrypted
 * PKCS#8 with mode 0600. Depends on libc and libcrypto only.
 */
#pragma once

struct trt_certs {
	char *dir;
	char *ca; /* "taskrouterd test CA": CA:TRUE (critical), keyCertSign+cRLSign, SKI */
	/* Signed by ca; SAN DNS:localhost, IP:127.0.0.1, IP:::1; valid from now-1h to now+2d.
	 * CA:FALSE, digitalSignature, serverAuth, AKI. */
	char *good_cert, *good_key;
	/* Signed by ca; SAN DNS:wrong.example only. */
	char *wrong_cert, *wrong_key;
	/* Signed by ca; the good SANs; valid from now-3d to now-2d. */
	char *expired_cert, *expired_key;
	/* A second CA ("taskrouterd unknown CA"), which no test trusts. */
	char *other_ca;
	/* Signed by other_ca; the good SANs. */
	char *untrusted_cert, *untrusted_key;
};

/* Make the keys and certificates and write them into the existing directory dir: ca.pem,
 * other-ca.pem, and NAME.pem + NAME.key for good, wrong, expired and untrusted (files of the
 * same names are replaced). Each call makes new keys and random serials. Fills *ret (paths the
 * caller frees with trt_certs_done) only on success. Returns 0, or -errno (-EIO: libcrypto
 * failed) after printing why as a TAP comment. */
int trt_certs_make(const char *dir, struct trt_certs *ret);

/* Free the paths (the files stay; they live in the test's directory). Accepts an all-zero
 * struct or one done already; leaves it all zero. */
void trt_certs_done(struct trt_certs *c);
