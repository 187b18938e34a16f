/*
 * taskrouter/client-glib.h — libtaskrouter-glib: runs a struct tr_client on a GLib main loop.
 *
 * tr_client_glib_attach adds a GSource to a GMainContext that watches the client's fd for
 * what tr_client_events asks (G_IO_IN, plus G_IO_OUT while output is queued), wakes up when
 * tr_client_timeout_ms says, and calls tr_client_process. Reply and event callbacks then
 * fire from that context's loop, so asynchronous calls (tr_client_call_async) are sent,
 * answered and timed out without anything else from the application. Blocking calls
 * (tr_client_call, ...) still work; they block the loop while they wait.
 *
 * Link with pkg-config libtaskrouter-glib (it pulls in libtaskrouter and glib-2.0). It is
 * built only when glib-2.0 is found. Like struct tr_client, not thread safe: attach to the
 * context of the thread that uses the client.
 */
#pragma once

#include <glib.h>

#include <taskrouter/client.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tr_client_glib;

/*
 * Called once, from the context's loop, when tr_client_process reports the connection dead
 * (errnum is its negative errno; every pending call's callback has fired with it). The
 * source has stopped watching by then. From here the application may detach and close the
 * client (tr_client_glib_detach, then tr_client_close), or reconnect.
 */
typedef void (*tr_client_glib_dead_cb)(struct tr_client *c, int errnum, void *userdata);

/*
 * Attach c to context (NULL: the global default context) at G_PRIORITY_DEFAULT. c is
 * borrowed: it must outlive the attachment, and tr_client_close must come after
 * tr_client_glib_detach. dead_cb may be NULL. On success returns 0 and *ret, which the
 * caller detaches; -EINVAL when c or ret is NULL or c is already dead. (Out of memory, GLib
 * aborts, as it does everywhere.)
 */
TR_EXPORT int tr_client_glib_attach(struct tr_client *c, GMainContext *context,
	tr_client_glib_dead_cb dead_cb, void *userdata, struct tr_client_glib **ret);

/*
 * Stop driving the client and free the attachment (NULL is fine). The client is left as it
 * is: pending calls stay pending until the next tr_client_process or tr_client_close. May be
 * called from any callback running on the context, dead_cb included. Returns NULL.
 */
TR_EXPORT struct tr_client_glib *tr_client_glib_detach(struct tr_client_glib *g);

/*
 * The GSource, borrowed (valid until detach), for g_source_set_priority or
 * g_source_set_name. Do not destroy it or set its callback.
 */
TR_EXPORT GSource *tr_client_glib_source(struct tr_client_glib *g);

#ifdef __cplusplus
}
#endif
