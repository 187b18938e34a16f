/*
 * rpc-client.h — a blocking test client for the daemon's socket, for unit tests that run the
 * server on their own loop: the harness's connection (tests/lib/trtest.h), and every receive
 * runs that loop until a frame arrives (20 s deadline).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct tr_json;
struct trt_conn;

struct rpc_client {
	uv_loop_t *loop; /* the server's */
	struct trt_conn *conn;
};

/* Connect to path; asserts on failure. */
struct rpc_client *rpc_client_new(uv_loop_t *loop, const char *path);
void rpc_client_free(struct rpc_client *c);
void rpc_client_send_raw(struct rpc_client *c, const void *data, size_t len);
/* Send json as one frame. */
void rpc_client_send(struct rpc_client *c, const char *json);
/* Run the loop until a frame arrives; NULL on EOF. The caller owns the tree. */
struct tr_json *rpc_client_recv(struct rpc_client *c);
/* Receive and count frames until the server closes the connection. */
int rpc_client_drain(struct rpc_client *c);
/* send + recv */
struct tr_json *rpc_client_call(struct rpc_client *c, const char *json);
/* error.code of a reply (asserts it has one) */
int64_t rpc_err_code(const struct tr_json *m);
/* error.data.param of a reply, or NULL */
const char *rpc_err_param(const struct tr_json *m);
/* Run the loop until fd sees the peer hang up; asserts within deadline_ms. */
void rpc_client_wait_hangup(struct rpc_client *c, uint64_t deadline_ms);

/* Fork child(path, n) (it runs in the child; its return is the exit status) and run loop
 * until it exits (30 s deadline). Returns its exit status. */
int rpc_test_fork(uv_loop_t *loop, int (*child)(const char *path, int n), const char *path,
	int n);
/* A fresh directory /tmp/<prefix>-XXXXXX in dir, and the socket path dir/run/socket. */
void rpc_test_dir(const char *prefix, char *dir, size_t dir_size, char *path, size_t path_size);
/* After the server closed: drain the loop (it must have no handle left) and close it; check
 * that the socket was unlinked and its directory was 0700; remove the directories. */
void rpc_test_finish(uv_loop_t *loop, const char *dir, const char *path);
