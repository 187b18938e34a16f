/* server.h — the lws server of taskrouter-sim (see server.c). */
#pragma once

#include "sim.h"

/* Create the lws context on s->loop and listen; sets s->port. 0 or -errno. */
int sim_server_start(struct sim *s);
