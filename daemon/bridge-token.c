/*
 * bridge-token.c — the token's lifecycle in the bridge (struct tr_bridge_token):
 * loading it at start, the warning and expiry timers, the token command, the
 * token file watch, and run-time updates. A new token goes to REST at once and
 * reopens a closed session.
 *
 * Never logs the token.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bridge-internal.h"
#include "config.h"
#include "log.h"
#include "rest.h"
#include "token.h"

#define TOKEN_CMD_RETRY_MS 5000 /* between token command runs once the warning time is reached */

static void emit_token(struct tr_bridge *b, const char *what) {
	if (b->ev && b->ev->token) {
		b->ev->token(b->ud, what, b->token.value ? b->token.jwt.exp : 0);
	}
}

static void on_token_timer(uv_timer_t *t) {
	struct tr_bridge *b = t->data;
	uint64_t now = uv_now(b->loop);
	uint64_t next;

	if (!b->token.value || b->token.expired || b->closing) {
		return;
	}
	if (now >= b->token.exp_loop) {
		tr_bridge_token_expire(b);
		return;
	}
	if (now >= b->token.warn_loop) {
		if (b->cfg->token_command) {
			if (!b->token.cmd) {
				tr_bridge_token_run_command(b);
			}
		} else if (!b->token.warned) {
			b->token.warned = true;
			tr_log_notice("upstream: the token expires in %" PRIu64 " s",
				(b->token.exp_loop - now) / 1000);
			emit_token(b, "tokenWillExpire");
		}
	}
	next = b->token.exp_loop;
	if (now < b->token.warn_loop) {
		next = b->token.warn_loop;
	} else if (b->cfg->token_command && now + TOKEN_CMD_RETRY_MS < b->token.exp_loop) {
		next = now + TOKEN_CMD_RETRY_MS;
	}
	(void)uv_timer_start(&b->token.timer, on_token_timer, next - now, 0);
}

void tr_bridge_token_set_lifetime(struct tr_bridge *b, int64_t lifetime_ms) {
	uint64_t now = uv_now(b->loop);
	int64_t remaining = b->token.jwt.exp * 1000 - wall_ms();
	uint64_t warn = (uint64_t)b->cfg->token_warn_s * 1000u;

	if (remaining < 0) {
		remaining = 0;
	}
	if (lifetime_ms > 0 && lifetime_ms < remaining) {
		remaining = lifetime_ms;
	}
	b->token.exp_loop = now + (uint64_t)remaining;
	b->token.warn_loop = b->token.exp_loop > warn ? b->token.exp_loop - warn : 0;
	if (b->token.warn_loop < now && b->token.warned) {
		b->token.warn_loop = now;
	}
	(void)uv_timer_start(&b->token.timer, on_token_timer,
		(b->token.warn_loop > now ? b->token.warn_loop : now) - now, 0);
}

void tr_bridge_token_expire(struct tr_bridge *b) {
	if (b->token.expired) {
		return;
	}
	b->token.expired = true;
	tr_bridge_session_cancel_reconnect(b);
	(void)uv_timer_stop(&b->token.timer);
	snprintf(b->last_error, sizeof(b->last_error), "token expired");
	tr_log_warning("upstream: the token has expired; not reconnecting until a new token "
		       "arrives (file change, daemon.updateToken%s)",
		b->cfg->token_command ? ", token command" : "");
	/* A session still open stays open until the server ends it (close 4001): that close
	 * is the disconnect, published then with the server's reason. Saying "disconnected"
	 * now would be false, and the real loss would then go unannounced. Either way
	 * tokenExpired comes first, as the SDK orders them. */
	emit_token(b, "tokenExpired");
	if (!b->session.wsi) {
		tr_bridge_set_state(b, TR_BRIDGE_TOKEN_EXPIRED, "token expired");
	}
}

/* Install a validated token (takes ownership). */
static int install_token(struct tr_bridge *b, char *token, const struct tr_jwt *jwt) {
	int e = tr_rest_set_token(b->rest, token);

	if (e < 0) {
		tr_token_free(token);
		return e;
	}
	tr_token_free(b->token.value);
	b->token.value = token;
	b->token.jwt = *jwt;
	b->token.warned = false;
	tr_bridge_token_set_lifetime(b, 0);
	return 0;
}

static int apply_new_token(struct tr_bridge *b, char *token) {
	struct tr_jwt jwt, old = b->token.jwt;
	bool was_expired = b->token.expired;
	bool first = !b->token.value, switched;
	int e;

	e = tr_token_validate(token, wall_ms() / 1000, &jwt);
	if (e < 0) {
		tr_token_free(token);
		return e;
	}
	if (b->token.value && strcmp(b->token.value, token) == 0) {
		tr_token_free(token);
		return 0;
	}
	switched = !first && !tr_jwt_same_identity(&old, &jwt);
	e = install_token(b, token, &jwt);
	if (e < 0) {
		return e;
	}
	b->token.expired = false;
	tr_log_info("upstream: token updated (expires in %" PRId64 " s)",
		jwt.exp - wall_ms() / 1000);
	if (switched) {
		tr_log_notice("upstream: the token switches identity: account %s -> %s, workspace "
			      "%s -> %s, worker %s -> %s; starting a new session",
			old.account_sid, jwt.account_sid, old.workspace_sid, jwt.workspace_sid,
			old.worker_sid, jwt.worker_sid);
	}
	if (!first) {
		emit_token(b, "tokenUpdated");
	}
	if (!b->started || b->closing) {
		return 0;
	}
	if (switched && b->session.wsi) {
		/* The open session is the old worker's: a new one resynchronises the cache. */
		tr_bridge_session_drop(b, "token switched to another worker", true);
		return 0;
	}
	if (!b->session.wsi) {
		/* Like the SDK: a closed socket reopens at once with the new token. */
		tr_bridge_session_connect(b);
	} else if (was_expired) {
		/* The socket stayed up: restore the state it had. */
		tr_bridge_set_state(b,
			b->resync.running || !b->session.have_init ?
				(b->session.have_init ? TR_BRIDGE_INITIALIZING : TR_BRIDGE_OPEN) :
				TR_BRIDGE_READY,
			NULL);
	}
	return 0;
}

int tr_bridge_update_token(struct tr_bridge *b, const char *token, bool allow_switch) {
	char *t;
	struct tr_jwt jwt;
	int e;

	if (!token) {
		return -EINVAL;
	}
	e = tr_token_validate(token, wall_ms() / 1000, &jwt);
	if (e == -ENOMSG) {
		return -EINVAL;
	}
	if (e < 0) {
		return e;
	}
	if (b->token.value && !allow_switch && !tr_jwt_same_identity(&b->token.jwt, &jwt)) {
		tr_log_warning("upstream: refused a token for another identity (worker %s, not %s) "
			       "without an explicit switch", jwt.worker_sid, b->token.jwt.worker_sid);
		return -EXDEV;
	}
	e = tr_token_from_buffer(token, strlen(token), &t);
	if (e < 0) {
		return -EINVAL;
	}
	return apply_new_token(b, t);
}

static void on_token_cmd(void *userdata, int err, char *token) {
	struct tr_bridge *b = userdata;
	int e;

	b->token.cmd = NULL;
	if (err == -ECANCELED || b->closing) {
		tr_token_free(token);
		return;
	}
	if (err < 0) {
		tr_log_warning("upstream: --token-command: %s", tr_token_strerror(err));
		snprintf(b->last_error, sizeof(b->last_error), "token command: %s",
			tr_token_strerror(err));
		if (!b->token.value && !b->closing) {
			/* Nothing to connect with yet: try again later. */
			tr_bridge_session_backoff(b, "token command failed");
		}
		return;
	}
	e = apply_new_token(b, token);
	if (e < 0) {
		tr_log_warning("upstream: --token-command printed an unusable token: %s",
			tr_token_strerror(e));
		return;
	}
	if (!b->session.wsi && b->state != TR_BRIDGE_CONNECTING && b->started && !b->closing) {
		tr_bridge_session_connect(b);
	}
}

void tr_bridge_token_run_command(struct tr_bridge *b) {
	int e;

	if (b->token.cmd || b->closing) {
		return;
	}
	tr_log_debug("upstream: running the token command");
	e = tr_token_cmd_run(b->loop, b->cfg->token_command, b->cfg->token_command_timeout_ms,
		on_token_cmd, b, &b->token.cmd);
	if (e < 0) {
		b->token.cmd = NULL;
		tr_log_warning("upstream: cannot run --token-command: %s", strerror(-e));
	}
}

/* Like ssh with a private key: a token file others can read is worth a warning (the token
 * is still used; a systemd credential is the service's own and is not judged). */
static int read_token_file(struct tr_bridge *b, char **ret) {
	mode_t mode = 0;
	int e = tr_token_read_file(b->cfg->token_file, ret, &mode);

	if (e == 0 && (mode & 077) && !b->cfg->token_from_credential) {
		tr_log_warning("upstream: token file %s is readable or writable by group or others "
			       "(mode %04o): anyone who can read it can act as this worker; "
			       "chmod 600 it", b->cfg->token_file, (unsigned)mode);
	}
	return e;
}

int tr_bridge_reload_token(struct tr_bridge *b) {
	char *t = NULL;
	int e;

	if (b->closing) {
		return -ESHUTDOWN;
	}
	if (b->cfg->token_command) {
		tr_bridge_token_run_command(b);
		return 0;
	}
	if (!b->cfg->token_file) {
		return -ENOENT;
	}
	e = read_token_file(b, &t);
	if (e < 0) {
		tr_log_warning("upstream: token file %s: %s, ignoring", b->cfg->token_file,
			tr_token_strerror(e));
		return e;
	}
	e = apply_new_token(b, t);
	if (e < 0) {
		tr_log_warning("upstream: token file %s: %s, ignoring", b->cfg->token_file,
			tr_token_strerror(e));
	}
	return e;
}

static void on_token_file_changed(void *userdata) {
	struct tr_bridge *b = userdata;

	tr_log_debug("upstream: token file changed");
	(void)tr_bridge_reload_token(b);
}

int tr_bridge_token_load(struct tr_bridge *b) {
	char *t = NULL;
	struct tr_jwt jwt;
	int e;

	e = read_token_file(b, &t);
	if (e < 0) {
		tr_log_err("upstream: token %s %s: %s",
			b->cfg->token_from_credential ? "credential" : "file", b->cfg->token_file,
			tr_token_strerror(e));
		return e;
	}
	e = tr_token_validate(t, wall_ms() / 1000, &jwt);
	if (e < 0) {
		tr_log_err("upstream: token %s %s: %s",
			b->cfg->token_from_credential ? "credential" : "file", b->cfg->token_file,
			tr_token_strerror(e));
		tr_token_free(t);
		return e;
	}
	e = install_token(b, t, &jwt);
	if (e < 0) {
		return e;
	}
	/* A credential is fixed for the life of the service: nothing to watch. */
	if (!b->cfg->token_from_credential) {
		e = tr_token_watch_new(b->loop, b->cfg->token_file, on_token_file_changed, b,
			&b->token.watch);
		if (e < 0) {
			b->token.watch = NULL;
			tr_log_warning("upstream: cannot watch %s: %s, ignoring",
				b->cfg->token_file, strerror(-e));
		}
	}
	return 0;
}

int64_t tr_bridge_token_expires_at(const struct tr_bridge *b) {
	return b->token.value ? b->token.jwt.exp : 0;
}

void tr_bridge_token_close(struct tr_bridge *b, void (*done)(void *userdata)) {
	if (b->token.cmd) {
		tr_token_cmd_cancel(b->token.cmd);
		b->token.cmd = NULL;
	}
	/* With no watch, done runs at once. */
	tr_token_watch_close(b->token.watch, done, b);
	b->token.watch = NULL;
}

void tr_bridge_token_done(struct tr_bridge *b) {
	b->token.value = tr_token_free(b->token.value);
}
