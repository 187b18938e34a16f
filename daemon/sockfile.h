/*
 * sockfile.h — the local socket's file and surroundings, for rpcsrv: the path (it must fit
 * sun_path), the directory (trusted only when nobody else can write to it), a live or stale
 * socket at the path, the socket's mode and group, who may connect, how many connections
 * fit the open-file limit, and each peer uid's share of them.
 *
 * Depends on the logger and tr-limits.h only (rpcsrv.c uses it, not the other way round).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Who besides our uid and root may connect: members of group, when set. */
struct tr_sock_access {
	bool group_set;
	gid_t group;
};


/* Before binding path: refuse a path longer than sun_path (-ENAMETOOLONG), create or check
 * its directory (-EPERM when another user owns it or group/others may write to it), refuse
 * a live server (-EADDRINUSE, probed without blocking) or a non-socket (-EEXIST), remove a
 * stale socket. Logs every refusal. */
int tr_sockfile_prepare(const struct tr_sock_access *o, const char *path);

/* After binding: 0600, or 0660 and o->group's group. */
int tr_sockfile_set_mode(const struct tr_sock_access *o, const char *path);

/* Our uid, root, or a member of o->group (primary gid or SO_PEERGROUPS of fd). */
bool tr_sockfile_peer_allowed(const struct tr_sock_access *o, int fd, const struct ucred *cr);

/* want, lowered (and logged) to leave TR_FD_RESERVE descriptors under RLIMIT_NOFILE. */
size_t tr_sockfile_fit_fd_limit(size_t want);

/* The daemon's own uid or root: may do anything, and always has slots kept. */
bool tr_peer_is_owner(uid_t uid);

/* Connections per peer uid, for the quotas and to log a refused peer once. */
#define TR_PEER_USERS_MAX 256 /* uids tracked; past this, another uid is refused */
struct tr_peer_user {
	uid_t uid;
	size_t conns;
	bool logged; /* a refusal of this uid has been logged */
};
struct tr_peer_users {
	struct tr_peer_user *v;
	size_t n;
	bool full_logged;
};

/* uid's entry, created on first sight (when all TR_PEER_USERS_MAX are taken, one without
 * connections is reused); NULL when every entry holds connections, or on ENOMEM. Entries
 * stay put (no reallocation): a connection may keep a pointer to its entry. */
struct tr_peer_user *tr_peer_users_get(struct tr_peer_users *u, uid_t uid);
/* True the first time a refusal of uid is reported (log it then), false afterwards. */
bool tr_peer_users_first_refusal(struct tr_peer_users *u, uid_t uid);
/*
 * May uid (its entry `who`, NULL when none could be had) take one more of max slots,
 * n_conns being taken? The daemon's uid and root may use all of them, entry or not; any other uid at most 1/TR_CONN_USER_SHARE, and all other uids together
 * leave 1/TR_CONN_OWNER_RESERVE free, so nobody else can lock the owner out. Returns NULL,
 * or the reason with the limit it hit in *limit.
 */
const char *tr_peer_users_over_quota(const struct tr_peer_users *u, uid_t uid,
	const struct tr_peer_user *who, size_t n_conns, size_t max, size_t *limit);
void tr_peer_users_done(struct tr_peer_users *u);
