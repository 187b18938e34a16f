/*
 * token.h — the worker token: decoding the JWT payload (no signature check),
 * reading it from a file or systemd credential, running --token-command
 * asynchronously (uv_spawn), and watching the token file (uv_fs_event).
 *
 * Depends on libuv and proto/json only; never logs a token.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define TR_TOKEN_MAX_SIZE (16u * 1024u) /* a larger token file or command output is refused */
#define TR_TOKEN_WATCH_DEBOUNCE_MS 200
/* exp and iat are clamped to [0, this] (9999-12-31T23:59:59Z), so time arithmetic in
 * milliseconds never overflows. */
#define TR_TOKEN_TIME_MAX INT64_C(253402300799)

struct tr_jwt {
	int64_t exp;               /* epoch seconds */
	int64_t iat;               /* 0 when absent */
	char account_sid[40];      /* sub, "" when absent */
	char workspace_sid[40];    /* grants.task_router.workspace_sid, "" when absent */
	char worker_sid[40];       /* grants.task_router.worker_sid, "" when absent */
};

/*
 * Decode the payload of a JWT (header.payload.signature, base64url). Returns 0 and fills
 * *ret; -EINVAL when it is not a JWT with a JSON object payload; -ENOMSG when it has no
 * integer "exp"; -ENOMEM.
 */
int tr_jwt_decode(const char *token, struct tr_jwt *ret);

/* Do a and b name the same account, workspace and worker? */
bool tr_jwt_same_identity(const struct tr_jwt *a, const struct tr_jwt *b);

/* tr_jwt_decode, then refuse a token whose exp <= now_s with -EKEYEXPIRED. */
int tr_token_validate(const char *token, int64_t now_s, struct tr_jwt *ret);

/* A short English text for the errors above. */
const char *tr_token_strerror(int err);

/*
 * Turn raw bytes (file contents, command output) into a token: strip surrounding white
 * space, refuse empty (-ENODATA), oversize (-EFBIG), embedded white space/NUL or characters
 * outside the JWT alphabet (-EINVAL). *ret is malloc'd; free it with tr_token_free.
 */
int tr_token_from_buffer(const char *buf, size_t len, char **ret);

/* Read a token file (at most TR_TOKEN_MAX_SIZE + 1 bytes are read). Small and local, so it is
 * read synchronously; anything but a regular file is refused without waiting (-EBADFD: a
 * FIFO would block the loop, -EISDIR). Returns 0 and, when ret_mode is not NULL, the file's
 * permission bits, or a negative errno (-ENOENT, -EACCES, -EFBIG, -ENODATA, ...). */
int tr_token_read_file(const char *path, char **ret, mode_t *ret_mode);

/* Wipe and free a token. Returns NULL. */
char *tr_token_free(char *token);

/*
 * Run `sh -c cmd` with stdin from /dev/null, capture stdout (bounded by TR_TOKEN_MAX_SIZE),
 * stderr inherited, kill it after timeout_ms. cb fires exactly once if this returns 0: with
 * err 0 and a token it must free (tr_token_free), or a negative errno (-ETIMEDOUT, -EFBIG,
 * -ENODATA, -EIO for a non-zero exit, -ECANCELED after tr_token_cmd_cancel). The object
 * frees itself after cb returns.
 */
struct tr_token_cmd;
typedef void (*tr_token_cmd_cb)(void *userdata, int err, char *token);
int tr_token_cmd_run(uv_loop_t *loop, const char *cmd, int timeout_ms, tr_token_cmd_cb cb,
	void *userdata, struct tr_token_cmd **ret);
/* Kill the command; cb fires later with -ECANCELED (or its real result if it already ended). */
void tr_token_cmd_cancel(struct tr_token_cmd *c);

/*
 * Watch a token file: a uv_fs_event on its directory (so a rename-over is seen), debounced by
 * TR_TOKEN_WATCH_DEBOUNCE_MS. cb fires after changes; it should re-read the file.
 */
struct tr_token_watch;
int tr_token_watch_new(uv_loop_t *loop, const char *path, void (*cb)(void *userdata),
	void *userdata, struct tr_token_watch **ret);
/* Stop watching; done (may be NULL) fires once the handles are closed, then it is freed. */
void tr_token_watch_close(struct tr_token_watch *w, void (*done)(void *userdata), void *userdata);
