/* daemon: the server's shared state. Three threads: the event loop (loop.c)
 * owns the connections and answers what costs little whatever the request's
 * size; the tokenizer thread (work.c) tokenizes prompts and answers
 * tokenize/detokenize; the scheduler (sched.c) owns the engine's generate()
 * and runs one generation at a time. They meet under `mu`: the tokenizer's
 * jobs, the queue, the outbox of encoded events going back to connections,
 * the stats and the running requests. */
#ifndef LADE_DAEMON_SERVER_H
#define LADE_DAEMON_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/chat.h"
#include "daemon/config.h"
#include "daemon/engine.h"
#include "daemon/queue.h"
#include "daemon/socket.h"
#include "daemon/stats.h"
#include "ipc/ipc.h"

/* One generation (generate or chat). Shared by the connection that made it
 * and the queue/scheduler: refcounted, freed by the last srv_req_unref. */
struct srv_req {
    atomic_int ref;
    atomic_bool cancel; /* set by cancel op, disconnect, drain; read per step */
    uint64_t conn_id;
    struct ipc_request rq; /* rq.params: with defaults and caps, as the engine gets them */
    int32_t *prompt;
    uint32_t n_prompt;
    const char *stop[SRV_STOP_MAX]; /* rq.params.stop: borrowed from rq, plus the template's */
    uint64_t enqueued_ns;
    struct srv_req *next_job; /* the tokenizer's list, under mu */
};

void srv_req_unref(struct srv_req *r);

/* An encoded event on its way from the scheduler to a connection. A
 * terminal item carries the scheduler's reference to its request. */
struct srv_out {
    struct srv_out *next;
    uint64_t conn_id;
    struct srv_req *done; /* non-NULL: the request's last event */
    bool job_end; /* the tokenizer is done with the connection's job */
    char *line; /* NULL when encoding failed: only `done` matters then */
    size_t len;
};

struct srv_conn;

#define SRV_MAX_PARALLEL 64 /* [daemon] max_parallel's maximum */

struct srv {
    struct srv_config cfg;
    struct srv_engine engine;
    struct srv_engine_info info;
    struct srv_chat *chat; /* the model's chat format (daemon/chat.h) */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    struct srv_queue queue;
    struct srv_req *running[SRV_MAX_PARALLEL]; /* by worker; NULL: idle */
    uint32_t n_running;
    struct srv_out *out_head, **out_tail;
    struct srv_stats stats;
    bool sched_stop; /* scheduler: exit once the queue is empty */
    bool sched_exited; /* every worker has */
    uint32_t sched_live; /* workers not yet exited */
    atomic_uint_fast64_t sched_beat_ns; /* scheduler progress, for the watchdog */

    struct srv_req *work_head, **work_tail; /* the tokenizer's jobs, FIFO */
    bool work_busy;
    bool work_stop;
    pthread_cond_t work_cv;

    /* The scheduler's workers, each taking requests from the queue and
     * running one generation at a time: min([daemon] max_parallel, what
     * the engine runs at once) of them. */
    struct srv_worker {
        struct srv *s;
        uint32_t idx;
        pthread_t thread;
    } workers[SRV_MAX_PARALLEL];
    uint32_t n_workers;
    bool sched_started;
    pthread_t work_thread;
    bool work_started;
    int wake_fd; /* eventfd: the scheduler or the tokenizer wrote to the outbox */

    /* event-loop thread only */
    int epfd;
    int listen_fd;
    int http_fd; /* TCP listener for HTTP ([http] listen), or -EBADF */
    char *http_key; /* bearer key TCP clients must send, or NULL */
    int signal_fd;
    struct srv_socket_file socket_file; /* the file we made, removed on exit; path "": none */
    struct srv_conn *conns;
    uint32_t n_conns;
    uint64_t next_conn_id;
    bool draining;
    uint64_t drain_deadline_ns;
    uint64_t watchdog_usec;
    uint64_t next_watchdog_ns;
    int spare_fd; /* /dev/null, given up to refuse clients when out of fds */
    void *listen_tag, *http_tag; /* the listeners' epoll tags */
    bool accept_off; /* out of fds: the listeners are out of epoll */
    bool fd_short; /* an out-of-fds episode is on (logged once) */
    bool accept_rearm; /* a connection closed since: try again */
    uint64_t accept_retry_ns; /* ... or try again then */
    uint64_t next_sweep_ns; /* timeouts are checked then */
    int (*reload)(void *ud, struct srv_config *ret); /* SIGHUP: fresh settings */
    void *reload_ud;
};

/* Build with cfg (taken over) and engine (taken over); starts nothing. */
int srv_new(struct srv_config *cfg, struct srv_engine *engine, struct srv **ret);
void srv_free(struct srv *s);
/* Start the scheduler and run the loop on listen_fd until SIGTERM/SIGINT
 * drained; file (NULL: systemd's socket) is removed when listening stops. 0 or negative errno. */
int srv_run(struct srv *s, int listen_fd, const struct srv_socket_file *file);

/* sched.c */
int srv_sched_start(struct srv *s);
/* Takes the engine's view (outside the lock: it may wait for a model
 * step's bookkeeping) and the gauges, and copies the stats. */
void srv_stats_take(struct srv *s, struct srv_stats *ret);
void srv_sched_join(struct srv *s);
/* Append an event for conn (takes line; NULL: none); wakes the loop. Under
 * no lock. job_end: the tokenizer's job for conn is over. */
void srv_post(struct srv *s, uint64_t conn_id, char *line, size_t len, struct srv_req *done,
              bool job_end);

/* work.c: the tokenizer thread. push hands it r (tokenize, detokenize, or a
 * generation to tokenize and queue) with one reference, which the job's
 * last srv_post carries back (or the queue keeps). */
int srv_work_start(struct srv *s);
void srv_work_join(struct srv *s);
void srv_work_push(struct srv *s, struct srv_req *r);
bool srv_work_idle(struct srv *s);

/* One client connection; event-loop thread only. */
struct srv_conn {
    struct srv_conn *next;
    uint64_t id;
    int fd;
    pid_t pid;
    uid_t uid;
    bool tcp; /* from the TCP listener: HTTP only, no peer credentials */
    struct ipc_linebuf in;
    char *out; /* bytes not yet written: out[out_off..out_len) */
    size_t out_off, out_len, out_cap;
    struct srv_req **reqs; /* generations in flight */
    uint32_t n_reqs, cap_reqs;
    uint32_t events; /* epoll mask registered */
    bool read_closed; /* peer shut down its writing side */
    bool read_paused; /* HTTP: pipelined input waits for the response in progress */
    bool closing; /* answered for the last time: close once output is out */
    bool dead; /* close at the end of this loop iteration */
    bool job_busy; /* the tokenizer has a job of ours: our next lines wait */
    bool processing; /* in conn_process_lines: no re-entry */
    struct srv_req *job; /* that job when it is a tokenize/detokenize (the tokenizer's reference) */
    uint64_t active_ns; /* bytes last read, written or queued (the idle timeout) */
    uint64_t tx_ns; /* bytes last written, or output became pending (the send timeout) */
    uint64_t line_ns; /* a request line has been coming in since, 0: none (the read timeout) */
    uint64_t hello_due_ns; /* protocol not known yet: NDJSON's hello goes out then (http.c) */
    struct srv_http *http; /* non-NULL: the connection speaks HTTP (http.c) */
};

/* loop.c: queue an encoded line (taken over) for the connection. While its
 * unsent output is above max_output, its requests are not read (NDJSON
 * lines, HTTP requests); a client that reads none of it for send_timeout_s
 * is dropped. On an HTTP connection the event goes to http.c, which
 * answers in HTTP. */
void srv_conn_send(struct srv *s, struct srv_conn *c, char *line, size_t len);
/* The same for bytes that go out as they are (HTTP responses). */
void srv_conn_send_raw(struct srv *s, struct srv_conn *c, char *buf, size_t len);
/* NDJSON's hello event. */
void srv_conn_hello(struct srv *s, struct srv_conn *c);
/* Register the epoll mask c's state asks for (read_closed, read_paused,
 * srv_conn_taking, output). */
void srv_conn_set_events(struct srv *s, struct srv_conn *c);
/* Whether c's next request (NDJSON line, HTTP request) may be taken: not
 * while the tokenizer holds a job of it or its unsent output is above
 * max_output (backpressure), nor once it is closing. */
bool srv_conn_taking(const struct srv *s, const struct srv_conn *c);
void srv_conn_send_error(struct srv *s, struct srv_conn *c, const struct ipc_id *id,
                         enum ipc_err code, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
/* An error event (counted in the stats), from any thread; NULL without memory. */
char *srv_error_event(struct srv *s, const struct ipc_id *id, enum ipc_err code, size_t *ret_len,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Remove r from c's in-flight table and drop the connection's reference. */
void srv_conn_forget_req(struct srv_conn *c, struct srv_req *r);

/* handle.c: the request limits of the live settings, for the NDJSON and
 * HTTP parsers. */
struct ipc_limits srv_ipc_limits(const struct srv *s);
/* handle.c: one request line from c (or an overlong one). */
void srv_handle_line(struct srv *s, struct srv_conn *c, const char *line, size_t len);
/* A parsed request (taken over), from a line or from HTTP (http.c). */
void srv_handle_request(struct srv *s, struct srv_conn *c, struct ipc_request *rq);
void srv_handle_overlong(struct srv *s, struct srv_conn *c);

#endif
