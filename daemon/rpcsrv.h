/*
 * rpcsrv.h — the Unix-socket JSON-RPC server: listening socket, peer
 * credential checks, per-connection framing, limits and write queues, and
 * the method table (methods.c).
 */
#pragma once

struct tr_daemon;
struct tr_rpcsrv;

/*
 * Start listening. listen_fd >= 0 is an already-listening socket (socket activation);
 * otherwise bind d->cfg->socket_path (or the default), creating its directory 0700,
 * refusing a live socket and removing a stale one. Returns 0 or negative errno (logged).
 */
int tr_rpcsrv_new(struct tr_daemon *d, int listen_fd, struct tr_rpcsrv **ret);

/* Stop accepting, flush clients (bounded by a deadline), close every handle; done fires
 * when all are closed. Then tr_rpcsrv_free. */
void tr_rpcsrv_close(struct tr_rpcsrv *s, void (*done)(void *userdata), void *userdata);
struct tr_rpcsrv *tr_rpcsrv_free(struct tr_rpcsrv *s);
