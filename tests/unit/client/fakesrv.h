/*
 * fakesrv.h — a scripted fake taskrouterd for the client unit tests: one thread, a Unix
 * socket in a mkdtemp directory, and helpers to read requests and write frames. Every
 * read has a deadline (SRV_DEADLINE_MS) so a broken client cannot hang a test.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SRV_DEADLINE_MS 5000

struct server;
typedef void (*script_fn)(struct server *s, int fd);

struct server {
	char dir[64];
	char path[128];
	int lfd;
	pthread_t th;
	script_fn script;
	int connections; /* how many connections to accept, one after the other (0 means 1) */
	void *user;
	int failures; /* script-side problems, checked by server_stop */
};

int64_t now_ms(void);
ssize_t read_full(int fd, void *buf, size_t n);
void write_full(int fd, const void *buf, size_t n);
/* One request frame: a malloc'd payload, or NULL on EOF/error/deadline. */
char *srv_read(int fd);
/* The integer "id" of a request, -1 when absent. */
long long req_id(const char *req);
/*
 * Whether req calls method with exactly params (compact JSON text, members in the order the
 * client writes them), or with no params when params is NULL. The client writes "method"
 * and "params" last, so this compares the end of the request.
 */
bool req_is(const char *req, const char *method, const char *params);
/* Write a frame for json into buf (large enough); returns its size. */
size_t put_frame(char *buf, const char *json);
void srv_send(int fd, const char *json);
void srv_sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Wait for the peer to hang up (bounded by the deadline). */
void srv_wait_eof(int fd);
/* Start a server running script on each accepted connection (s->connections of them). */
struct server *server_start(script_fn script);
struct server *server_start_n(script_fn script, int connections, void *user);
/* Join the thread, assert the script saw no failures, remove the socket and directory. */
void server_stop(struct server *s);
