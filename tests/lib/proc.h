/*
 * proc.h — child processes for the test harnesses: spawn one with our environment plus
 * extras, its stderr appended to a log file and its stdout either to that log or to a pipe
 * the test reads; wait for a piece of output, for the exit, or stop it (SIGTERM, then
 * SIGKILL after a deadline). Also the deadline and valgrind helpers every harness needs.
 *
 * Nothing here sleeps to synchronise: every wait is a poll() with a deadline on a pipe or a
 * pidfd. A child still running when the test program exits is killed then (cmocka skips a
 * group's teardown when its setup fails). Depends on libc only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rbuf.h"

#define TRT_DEADLINE_MS 20000 /* default wait for anything; x10 under valgrind */

/* Children get TASKROUTERD_CHECK_REPLAY=1 (the daemon's replay check mode, subs.h) unless
 * this is false: the benchmarks measure the daemon as it runs for users. */
extern bool trt_replay_check;

/* TR_UNDER_VALGRIND is set (the 'valgrind' test setup): children run under valgrind. */
bool trt_under_valgrind(void);
/* Scale a timeout for valgrind runs. */
int trt_ms(int ms);
/* CLOCK_MONOTONIC in milliseconds, and what is left of a deadline on it (never negative). */
int64_t trt_now_ms(void);
int trt_remaining(int64_t deadline);

struct trt_proc {
	pid_t pid; /* -1 once reaped */
	int pidfd;
	struct trt_rbuf out; /* a piped stdout: what the child wrote; fd -1 after EOF */
	char *name;     /* for messages */
	char *log_path; /* the child's stderr (and unpiped stdout); NULL: ours */
	int status;     /* exit status, 128 + signal when killed; -1 until reaped */
};

struct trt_spawn_opts {
	const char *const *env; /* "K=V" added to our environment, NULL-terminated, or NULL */
	const char *log_path;   /* append stderr (and stdout unless piped) here; NULL: ours */
	bool pipe_stdout;       /* keep stdout for trt_proc_wait_output */
	const char *input;      /* written to stdin, which is then closed; NULL: /dev/null */
};

/* An empty, not running process: what trt_proc_done leaves too. */
void trt_proc_init(struct trt_proc *p);

/* Start argv[0] (a path, no PATH search). p must not hold a running child. Returns 0 or
 * -errno; on failure p still needs trt_proc_done. */
int trt_proc_spawn(struct trt_proc *p, const char *name, const char *const *argv,
	const struct trt_spawn_opts *opts);

/* Read the piped stdout until it contains needle (0), or with needle NULL until EOF (0).
 * -EPIPE at EOF without the needle, -ETIMEDOUT, -EINVAL when stdout is not piped. */
int trt_proc_wait_output(struct trt_proc *p, const char *needle, int timeout_ms);

/* Wait for the child to exit by itself (a piped stdout is read until EOF meanwhile); kill it
 * when the deadline passes. Returns its exit status, or -ETIMEDOUT. */
int trt_proc_wait_exit(struct trt_proc *p, int timeout_ms);

/* SIGTERM and trt_proc_wait_exit. A non-zero status prints the tail of the child's log and
 * its valgrind report, if any. Returns the exit status (0: clean), or -ETIMEDOUT. */
int trt_proc_stop(struct trt_proc *p, int timeout_ms);

/* SIGKILL without waiting for cleanup (a crash), and reap. */
void trt_proc_kill(struct trt_proc *p);

/* Kill what still runs, close and free; p is then as after trt_proc_init. */
void trt_proc_done(struct trt_proc *p);

/* Does the child still run? */
bool trt_proc_alive(const struct trt_proc *p);

/* Does the child's log contain this text? (for "the token never appears" checks) */
bool trt_proc_log_contains(const struct trt_proc *p, const char *needle);

/* Run a command (argv NULL-terminated) with stdin from `input` (may be NULL) and the extra
 * environment env (may be NULL), capture its stdout into *ret_out (caller frees; never NULL
 * when ret_out is given) and return its exit status, or -errno (-ETIMEDOUT: killed at the
 * deadline). stderr is ours. */
int trt_run(const char *const *argv, const char *const *env, const char *input, int timeout_ms,
	char **ret_out);

/* The argv prefix that runs a child under valgrind when trt_under_valgrind(), its report in
 * DIR/NAME.valgrind.log (argv needs room for 8 entries, valid until the next call). Returns
 * the number of entries written: 0 without valgrind. */
size_t trt_valgrind_argv(const char **argv, const char *dir, const char *name);
