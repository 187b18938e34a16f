/*
 * upstream.h — the fan-out benchmark's upstream stub, and the raw fan-out baseline.
 *
 * The stub listens on 127.0.0.1 and sits on the websocket between taskrouterd and
 * taskrouter-sim. The simulator bootstraps the daemon through it: the upgrade, init and every
 * frame pass through as they come, and the daemon's REST calls go to the simulator directly.
 * For a measurement the stub holds the simulator's frames instead of passing them on; once the
 * simulator has sent them all it is idle, and the stub sends the held frames to the daemon in
 * one blocking write, as fast as the daemon reads them. The timed window then holds the
 * daemon's work, not the simulator's. The same bytes can go to another socket: the raw
 * baseline's.
 *
 * The stub is a thread of the bench process with blocking I/O; it depends on libc and
 * pthreads only. Heartbeat frames (" ") that arrive while frames are held are dropped.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct trb_upstream;

/* Start the stub's thread, listening on an ephemeral loopback port (*ret_port) and connecting
 * each client it accepts to 127.0.0.1:sim_port. Returns 0 or -errno. */
int trb_upstream_start(int sim_port, struct trb_upstream **ret, int *ret_port);
/* Stop the thread and close everything; NULL is fine. Returns NULL. */
struct trb_upstream *trb_upstream_free(struct trb_upstream *s);

/* From now on keep the simulator's frames instead of passing them on. */
void trb_upstream_hold(struct trb_upstream *s);
/* Wait until at least n frames are held, those whose text contains `needle` (e.g.
 * "reservation.created") counted apart in *ret_matching (may be NULL). Returns the number of
 * frames held, or -ETIMEDOUT. */
int trb_upstream_wait_held(struct trb_upstream *s, size_t n, const char *needle,
	size_t *ret_matching, int timeout_ms);
/* The held frames' size in bytes. */
size_t trb_upstream_held_bytes(struct trb_upstream *s);
/* Have the thread write every held frame to fd (-1: the daemon) and return at once; the
 * caller reads the other end meanwhile. keep: the frames stay held (for another target);
 * otherwise they are dropped and frames pass through again. A release waits for the one
 * before it to finish. Returns 0 or -ENOTCONN (no daemon connected). */
int trb_upstream_release(struct trb_upstream *s, int fd, bool keep);
/* Wait until the last release has been written. 0 or -ETIMEDOUT. */
int trb_upstream_wait_idle(struct trb_upstream *s, int timeout_ms);

/* ---- the raw baseline ---- */

struct trb_raw {
	pid_t pid;   /* the child doing the fan-out: its CPU time is the baseline's */
	int in_fd;   /* write websocket frames here (a loopback TCP connection, like the daemon's) */
	int *subs;   /* n Unix stream sockets: each gets every frame's payload, length-prefixed */
	int n;
};

/* Fork a child that reads server websocket frames from a loopback TCP socket and writes each
 * payload (with the local protocol's 4-byte length) to n Unix sockets: per read, one writev per
 * socket with every complete frame. It allocates nothing after the fork. Returns 0 or -errno. */
int trb_raw_start(int n, struct trb_raw *ret);
/* Close the input (the child exits at EOF), reap it, close the subscriber ends. */
void trb_raw_stop(struct trb_raw *r);
