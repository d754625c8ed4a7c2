/* End-to-end helpers: start `laded --fake-engine` on a socket in a fresh
 * temp dir, talk to it raw or through liblade-client, stop it. */
#ifndef LADE_TESTS_DAEMON_E2E_H
#define LADE_TESTS_DAEMON_E2E_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "ipc/lade-client.h"

struct e2e {
    char dir[64];
    char sock[128];
    char log[128];
    char conf[128];
    pid_t pid;
    bool default_group; /* spawn without --set daemon.socket_group= */
};

/* Pass as spec to run the real engine (extra args then name the model). */
extern const char e2e_real_engine[];

/* Make the temp dir, an empty config file and the paths. */
void e2e_init(struct e2e *e);
/* Spawn laded with --fake-engine=spec plus extra args (NULL-terminated,
 * may be NULL); listen_fd >= 0 is passed as a systemd socket. Does not
 * wait. */
void e2e_spawn(struct e2e *e, const char *spec, const char *const *extra, int listen_fd);
/* Wait until the socket accepts; fails the test (with the log) if laded
 * exits first. */
void e2e_wait_ready(struct e2e *e);
/* init + spawn + wait_ready. */
void e2e_start(struct e2e *e, const char *spec, const char *const *extra);
/* Exit status of laded after waiting up to timeout_ms (-1 if it did not
 * exit, then it is killed). */
int e2e_wait_exit(struct e2e *e, int timeout_ms);
/* SIGTERM and e2e_wait_exit(10 s). */
int e2e_stop(struct e2e *e);
/* Kill if still running, remove the temp dir. */
void e2e_cleanup(struct e2e *e);
void e2e_dump_log(const struct e2e *e);
/* Whether a line of laded's output (stderr and stdout) contains needle. */
bool e2e_log_has(const struct e2e *e, const char *needle);

struct lade_client *e2e_client(struct e2e *e);
/* Start laded (fake engine spec) also listening for HTTP on a free
 * loopback port, which it returns, with key (NULL: none) in a key file. */
int e2e_start_tcp(struct e2e *e, const char *spec, const char *key);
/* Ask for stats on c until they contain needle (5 s); whether they did. */
bool e2e_wait_stats(struct lade_client *c, const char *needle);
/* Raw connection, nothing read (HTTP clients speak first). */
int e2e_connect(struct e2e *e);
/* Raw connection; the hello line is read and checked. */
int e2e_raw(struct e2e *e);
void e2e_send(int fd, const void *buf, size_t len);
void e2e_send_str(int fd, const char *s);
/* Next event line as JSON, NULL on EOF/timeout. */
json_t *e2e_read(int fd, int timeout_ms);
/* Read events until the one for id that ends it (done, result, error);
 * returns it. Collects token text into text (may be NULL). */
json_t *e2e_read_final(int fd, const char *id, char *text, size_t cap);
const char *e2e_str(json_t *o, const char *key);
/* o[obj][key] as an integer (0 when missing). */
json_int_t e2e_int(json_t *o, const char *obj, const char *key);
/* The info result on fd. */
json_t *e2e_info(int fd);
/* Writes text as e's configuration, sends SIGHUP and waits until info on fd
 * shows it; returns that info. Each call adds its own [limits]
 * max_output_buffer_bytes, in turn higher and lower than the last, as the
 * sign that the reload happened. */
json_t *e2e_reload(struct e2e *e, int fd, const char *text);
/* Sends line (a generation with this id), waits for its first event,
 * sends SIGTERM and returns the generation's final event (NULL if none). */
json_t *e2e_sigterm_during(struct e2e *e, int fd, const char *line, const char *id);
/* Fails unless ev is a done event; takes ev. */
void e2e_expect_done(json_t *ev);
/* Fails unless ev is an error with code whose message holds needle; takes ev. */
void e2e_expect_error(json_t *ev, const char *code, const char *needle);

/* HTTP on the same socket. A response read whole: chunked encoding undone,
 * or the body up to Content-Length, or up to EOF. */
struct e2e_resp {
    int status;
    char head[8192]; /* status line and headers */
    char *body; /* NUL-terminated */
    size_t len;
};

bool e2e_get_byte(int fd, char *c);
/* A line with its \n; false on EOF or 20 s of silence. */
bool e2e_get_line(int fd, char *buf, size_t cap);
/* One response; false on EOF before its status line. */
bool e2e_http_read(int fd, struct e2e_resp *r);
void e2e_resp_done(struct e2e_resp *r);
/* A header's value (static buffer), NULL if absent. */
const char *e2e_header(const struct e2e_resp *r, const char *name);
json_t *e2e_resp_json(const struct e2e_resp *r);
/* A POST with a JSON body, malloc'd. */
char *e2e_post_req(const char *path, const char *body);
/* One request on a fresh connection; the response's status. */
int e2e_exchange(struct e2e *e, const char *raw, struct e2e_resp *r);
int e2e_post(struct e2e *e, const char *path, const char *body, struct e2e_resp *r);

#endif
