/*
 * sockfile.c — the listening socket's file and its surroundings (see sockfile.h).
 */
#include "sockfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "tr-limits.h"

/*
 * Who may talk to the daemon: its own uid, root, and with --allow-group the members of that
 * group. Membership is what the kernel says about the connecting process (its primary gid
 * and SO_PEERGROUPS, its supplementary groups at connect time), not a lookup in /etc/group:
 * that would block the loop (NSS may be LDAP or sssd) and can disagree with the process.
 */
bool tr_sockfile_peer_allowed(const struct tr_sock_access *cfg, int fd,
	const struct ucred *cr) {
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool found = false;

	if (cr->uid == getuid() || cr->uid == 0) {
		return true;
	}
	if (!cfg->group_set) {
		return false;
	}
	if (cr->gid == cfg->group) {
		return true;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE || len == 0) {
			return false;
		}
		groups = malloc(len);
		if (!groups || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
			free(groups);
			return false;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++) {
		found = found || groups[i] == cfg->group;
	}
	if (groups != small) {
		free(groups);
	}
	return found;
}

/*
 * The socket's directory: created when missing (0700, or 0710 with the allowed group so
 * that group can reach the socket), and trusted only when it is a directory owned by us or
 * root that nobody else can write to. Another user who can write there could replace the
 * socket with a server of their own, and clients would hand it their requests (and tokens).
 */
static int prepare_dir(const struct tr_sock_access *o, const char *path) {
	char *dir = strdup(path), *slash;
	mode_t mode = o->group_set ? 0710 : 0700;
	struct stat st;
	int r = 0;

	if (!dir) {
		return -ENOMEM;
	}
	slash = strrchr(dir, '/');
	if (!slash) {
		strcpy(dir, ".");
	} else if (slash == dir) {
		dir[1] = '\0';
	} else {
		*slash = '\0';
	}
	if (mkdir(dir, mode) == 0) {
		/* ours, new: the mode without the umask, the group for --allow-group */
		if ((o->group_set && chown(dir, (uid_t)-1, o->group) < 0) ||
			chmod(dir, mode) < 0) {
			tr_log_warning("%s: %s, ignoring", dir, strerror(errno));
		}
	} else if (errno != EEXIST) {
		r = -errno;
		tr_log_err("cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	if (stat(dir, &st) < 0) {
		r = -errno;
		tr_log_err("%s: %s", dir, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		r = -ENOTDIR;
		tr_log_err("%s is not a directory", dir);
	} else if (st.st_uid != getuid() && st.st_uid != 0) {
		r = -EPERM;
		tr_log_err("refusing the socket directory %s: it belongs to uid %ld, not to uid %ld "
			   "or root, so its owner could replace the socket", dir, (long)st.st_uid,
			(long)getuid());
	} else if (st.st_mode & 022) {
		r = -EPERM;
		tr_log_err("refusing the socket directory %s: mode %04o lets others replace the "
			   "socket; use a private directory (0700)", dir, (unsigned)(st.st_mode & 07777));
	} else if (o->group_set && !(st.st_mode & 011)) {
		tr_log_warning("%s is mode %04o: members of group %ld cannot reach the socket",
			dir, (unsigned)(st.st_mode & 07777), (long)o->group);
	}
out:
	free(dir);
	return r;
}

/*
 * Is a live server listening at path? A non-blocking connect answers at once: accepted or
 * EAGAIN (a full backlog: someone listens but is stuck) mean alive, ECONNREFUSED stale. A
 * blocking connect would wait for as long as the other daemon is stuck.
 */
static bool socket_alive(const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;
	bool alive;

	strcpy(sa.sun_path, path); /* its length was checked by the caller */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return false;
	}
	alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN ||
		errno == EINPROGRESS;
	close(fd);
	return alive;
}

/* Connections must leave descriptors for the rest of the daemon; past the fd limit the
 * kernel refuses accept() and a client would see a bare EOF instead of -32008. */
size_t tr_sockfile_fit_fd_limit(size_t want) {
	struct rlimit rl;
	size_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) {
		return want;
	}
	room = rl.rlim_cur > 2 * TR_FD_RESERVE ? (size_t)rl.rlim_cur - TR_FD_RESERVE :
		(size_t)rl.rlim_cur / 2;
	if (want > room) {
		tr_log_warning("max-connections %zu does not fit the open-file limit %llu; using %zu",
			want, (unsigned long long)rl.rlim_cur, room);
		return room;
	}
	return want;
}

/* 0600, or 0660 with the allowed group: the kernel checks write permission on the socket
 * file at connect, so without this the group's members got EACCES. */
int tr_sockfile_set_mode(const struct tr_sock_access *o, const char *p) {
	if (o->group_set && chown(p, (uid_t)-1, o->group) < 0) {
		tr_log_err("cannot give %s to group %ld: %s", p, (long)o->group,
			strerror(errno));
		return -errno;
	}
	if (chmod(p, o->group_set ? 0660 : 0600) < 0) {
		tr_log_err("chmod %s: %s", p, strerror(errno));
		return -errno;
	}
	return 0;
}

int tr_sockfile_prepare(const struct tr_sock_access *o, const char *path) {
	struct stat st;
	int r;

	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		tr_log_err("socket path %s is too long (%zu bytes; a Unix socket path has at most %zu)",
			path, strlen(path), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	r = prepare_dir(o, path);
	if (r < 0) {
		return r;
	}
	if (lstat(path, &st) < 0) {
		return 0;
	}
	if (!S_ISSOCK(st.st_mode)) {
		tr_log_err("%s exists and is not a socket, refusing to remove it", path);
		return -EEXIST;
	}
	if (socket_alive(path)) {
		tr_log_err("%s: another taskrouterd is running", path);
		return -EADDRINUSE;
	}
	if (unlink(path) < 0) {
		r = -errno;
		tr_log_err("cannot remove stale socket %s: %s", path, strerror(errno));
		return r;
	}
	tr_log_info("removed stale socket %s", path);
	return 0;
}

bool tr_peer_is_owner(uid_t uid) {
	return uid == getuid() || uid == 0;
}

struct tr_peer_user *tr_peer_users_get(struct tr_peer_users *u, uid_t uid) {
	struct tr_peer_user *e;

	for (size_t i = 0; i < u->n; i++) {
		if (u->v[i].uid == uid) {
			return &u->v[i];
		}
	}
	if (u->n == TR_PEER_USERS_MAX) {
		/* full: take over a uid that holds no connection now (it only loses its
		 * "refusal logged" mark) */
		for (size_t i = 0; i < u->n; i++) {
			if (u->v[i].conns == 0) {
				u->v[i] = (struct tr_peer_user){ .uid = uid };
				return &u->v[i];
			}
		}
		return NULL;
	}
	if (!u->v) {
		u->v = calloc(TR_PEER_USERS_MAX, sizeof(*u->v));
		if (!u->v) {
			return NULL;
		}
	}
	e = &u->v[u->n++];
	*e = (struct tr_peer_user){ .uid = uid };
	return e;
}

bool tr_peer_users_first_refusal(struct tr_peer_users *u, uid_t uid) {
	struct tr_peer_user *e = tr_peer_users_get(u, uid);

	if (!e) {
		/* every entry holds connections: log the first such refusal only */
		bool first = !u->full_logged;

		u->full_logged = true;
		return first;
	}
	if (e->logged) {
		return false;
	}
	e->logged = true;
	return true;
}

const char *tr_peer_users_over_quota(const struct tr_peer_users *u, uid_t uid,
	const struct tr_peer_user *who, size_t n_conns, size_t max, size_t *limit) {
	size_t share = max / TR_CONN_USER_SHARE;
	size_t reserve = max / TR_CONN_OWNER_RESERVE;
	size_t others = 0;

	share = share ? share : 1;
	reserve = reserve ? reserve : 1;
	*limit = max;
	if (n_conns >= max) {
		return "too many connections";
	}
	if (tr_peer_is_owner(uid)) {
		return NULL;
	}
	if (!who) {
		*limit = TR_PEER_USERS_MAX;
		return "too many users";
	}
	for (size_t i = 0; i < u->n; i++) {
		others += tr_peer_is_owner(u->v[i].uid) ? 0 : u->v[i].conns;
	}
	if (who->conns >= share) {
		*limit = share;
		return "too many connections for this user";
	}
	if (max > reserve && others >= max - reserve) {
		*limit = max - reserve;
		return "too many connections from other users (the rest is kept for the owner)";
	}
	return NULL;
}

void tr_peer_users_done(struct tr_peer_users *u) {
	free(u->v);
	*u = (struct tr_peer_users){ 0 };
}
