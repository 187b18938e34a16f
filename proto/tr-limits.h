/*
 * tr-limits.h — every bound on what a client or the upstream can make taskrouterd hold or
 * wait for: frame and message sizes, JSON shape, requests in flight, output queues,
 * connections, pages, timeouts and deadlines.
 *
 * Each limit a peer can hit has a name here, a log line when it is hit, a counter in
 * daemon.status and a test that hits it. doc/PROTOCOL.md lists the ones a client can
 * observe. Internal buffer sizes that bound nothing a peer controls (a read buffer, a write
 * batch, a log line) stay with their module. No dependencies.
 */
#pragma once

/* Framing: u32 big-endian length, then that many bytes of UTF-8 JSON. */
#define TR_FRAME_HEADER_SIZE 4u
#define TR_FRAME_MIN_PAYLOAD 2u                   /* "{}" is the smallest message */
#define TR_FRAME_MAX_PAYLOAD_DEFAULT (1024u * 1024u) /* 1 MiB, settable at runtime */

/* JSON trees built by proto/json.c. */
#define TR_JSON_MAX_DEPTH 32
#define TR_JSON_MAX_KEYS 4096 /* members per object */

/* Local RPC server. */
#define TR_RPC_MAX_INFLIGHT 16                     /* per connection; stop reading when reached */
#define TR_OUTQ_SOFT_LIMIT (1024u * 1024u)         /* bytes queued for one client */
#define TR_OUTQ_SOFT_SECONDS 10                    /* ... tolerated this long */
#define TR_OUTQ_HARD_LIMIT (8u * 1024u * 1024u)    /* disconnect at once above this */
#define TR_MAX_CONNECTIONS_DEFAULT 1024
#define TR_CONN_USER_SHARE 4                       /* another uid holds at most 1/4 of them */
#define TR_CONN_OWNER_RESERVE 8                    /* 1/8 are kept for the daemon's uid and root */
#define TR_FD_RESERVE 64 /* fds kept beyond the connections (upstream, logs, refusals) */
#define TR_NOFILE_MAX 65536 /* the soft RLIMIT_NOFILE (connections + reserve) is at most this */
#define TR_NOFILE_FLOOR 1024 /* ... and at least this (or what it was, if lower) */
#define TR_FRAME_IDLE_MS_DEFAULT 15000 /* a partial frame with no byte for this long: dropped */
#define TR_SUBS_PER_CONNECTION 64                  /* subscriptions one connection may hold */
#define TR_EVENT_RING_SIZE 4096                    /* events kept for events.subscribe{since} */
#define TR_EVENT_RING_BYTES (4u * 1024u * 1024u)   /* ... and at most this many bytes of them */
#define TR_LIST_PAGE_DEFAULT 200                   /* tasks per task.list page / subscribe snapshot */
#define TR_LIST_PAGE_MAX 1000                      /* largest `limit` a client may ask for */
#define TR_LIST_PAGE_BYTES (768u * 1024u)          /* JSON per page: a reply always fits a frame */

/* TaskRouter's own "resource configuration limit" on a Task's attributes (whitespace
 * counts): larger ones are refused before anything is sent. Measured as the compact JSON
 * text the daemon sends, in bytes. */
#define TR_TASK_ATTRIBUTES_MAX 32768
/* What the cache keeps of a Task's attributes or add-ons from upstream, each (compact JSON):
 * a larger value is replaced by {} and its size reported (attributesOmitted), so that every
 * task the cache holds fits a reply page and an event frame. */
#define TR_TASK_EMBEDDED_MAX (384u * 1024u)

/* Upstream. */
#define TR_REST_MAX_CONCURRENCY 8 /* CURLMOPT_MAX_TOTAL_CONNECTIONS; more requests queue */
#define TR_REST_TIMEOUT_MS_DEFAULT 15000
#define TR_WS_MAX_MESSAGE (1024u * 1024u) /* a larger ws message drops the session */
#define TR_WS_SILENCE_TIMEOUT_MS_DEFAULT 30000
#define TR_WS_INIT_TIMEOUT_MS 10000
#define TR_WS_CONNECT_TIMEOUT_MS_DEFAULT 15000 /* TCP + proxy reply + TLS, --connect-timeout-ms */
#define TR_WS_CONNECT_TIMEOUT_MS_MIN 1000
#define TR_WS_CONNECT_TIMEOUT_MS_MAX 120000
#define TR_RECONNECT_MIN_MS 800
#define TR_RECONNECT_MAX_MS 30000
#define TR_TASK_CLOSED_GRACE_MS_DEFAULT 5000 /* recently-closed area, spec §6.3 */
#define TR_TRANSFER_PENDING_MS 10000         /* transfer events waiting for a POST reply */

/* At shutdown, queued replies and events get this long to drain before connections close,
 * and calls already sent upstream this long to be answered. */
#define TR_CLOSE_FLUSH_MS 1000
#define TR_CLOSE_CALLS_MS 10000
