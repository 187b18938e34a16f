/*
 * sd-env.h — the two parts of systemd's environment protocol the daemon reads: socket
 * activation (LISTEN_PID, LISTEN_FDS; sd_listen_fds(3)) and the watchdog (WATCHDOG_USEC,
 * WATCHDOG_PID; sd_watchdog_enabled(3)). sd_notify is tr_loop_notify (loop.h).
 *
 * Our own rather than libsystemd's: these are a few getenv() calls, and linking libsystemd
 * loads it and five libraries of its own (libgcrypt, libcap, liblz4, liblzma, libgpg-error)
 * into the daemon for them, about 110 KB of private memory for as long as it runs.
 *
 * Depends on libc only.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The first descriptor systemd passes (SD_LISTEN_FDS_START). */
#define TR_SD_LISTEN_FDS_START 3

/* How many descriptors, from TR_SD_LISTEN_FDS_START, systemd passed to this process: 0 when
 * LISTEN_PID is unset or names another process (the variables were inherited), else
 * LISTEN_FDS, and each of them is made close-on-exec. -EINVAL when a variable is not a
 * number. With unset_environment, LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed in
 * every case, so that no child takes them as its own. */
int tr_sd_listen_fds(bool unset_environment);

/* Whether systemd expects watchdog pings from this process: 1 and *usec = WATCHDOG_USEC when
 * it is set, positive, and WATCHDOG_PID is unset or this process; 0 when not; -EINVAL when a
 * variable is not a number (or WATCHDOG_USEC is 0). */
int tr_sd_watchdog_usec(uint64_t *usec);
