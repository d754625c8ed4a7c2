/* laded: startup. Configuration (file, then flags), the socket systemd
 * passed or our socket's path checked, the engine (loaded on a thread, so
 * that SIGTERM can cancel it), our socket made, then the server until
 * SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "conf/conf.h"
#include "daemon/http_msg.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/socket.h"
#include "daemon/systemd.h"
#include "daemon/util.h"
#include "llama/llm.h"

#define DEFAULT_CONFIG "/etc/lade/laded.conf"
#define SETS_MAX 64
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

struct args {
    const char *config;
    bool config_explicit;
    const char *sets[SETS_MAX]; /* SECTION.KEY=VALUE, flags included */
    unsigned n_sets;
    char flag_sets[3][256];
    const char *fake_engine;
    bool check_config;
};

static void usage(FILE *f)
{
    fputs("Usage: laded [OPTIONS]\n"
          "Serve a LLaMA GGUF model on a Unix socket (see laded(8)).\n\n"
          "  -c, --config PATH        configuration file (default " DEFAULT_CONFIG ")\n"
          "  -s, --socket PATH        socket path, same as --set daemon.socket=PATH\n"
          "  -m, --model PATH         GGUF file, same as --set model.path=PATH\n"
          "  -d, --device NAME        Vulkan device, same as --set device.device=NAME\n"
          "      --set SECTION.KEY=VALUE  override one configuration key\n"
          "      --check-config       validate the configuration and exit\n"
          "  -h, --help               this text\n"
          "      --version            print the version\n",
          f);
}

static int add_set(struct args *a, const char *s)
{
    if (a->n_sets >= SETS_MAX) {
        fprintf(stderr, "laded: too many --set options (at most %d)\n", SETS_MAX);
        return -E2BIG;
    }
    a->sets[a->n_sets++] = s;
    return 0;
}

static int add_flag_set(struct args *a, int slot, const char *key, const char *v)
{
    snprintf(a->flag_sets[slot], sizeof(a->flag_sets[slot]), "%s=%s", key, v);
    return add_set(a, a->flag_sets[slot]);
}

/* 0 to run, 1 to exit successfully (help, version), negative on error. */
static int parse_args(int argc, char **argv, struct args *a)
{
    enum { OPT_SET = 256, OPT_CHECK, OPT_FAKE, OPT_VERSION };
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "socket", required_argument, NULL, 's' },
        { "model", required_argument, NULL, 'm' },
        { "device", required_argument, NULL, 'd' },
        { "set", required_argument, NULL, OPT_SET },
        { "check-config", no_argument, NULL, OPT_CHECK },
        { "fake-engine", optional_argument, NULL, OPT_FAKE }, /* tests only, undocumented */
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { 0 },
    };
    int c, r = 0;

    *a = (struct args){ .config = DEFAULT_CONFIG };
    while (r == 0 && (c = getopt_long(argc, argv, "c:s:m:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->config = optarg;
            a->config_explicit = true;
            break;
        case 's': r = add_flag_set(a, 0, "daemon.socket", optarg); break;
        case 'm': r = add_flag_set(a, 1, "model.path", optarg); break;
        case 'd': r = add_flag_set(a, 2, "device.device", optarg); break;
        case OPT_SET: r = add_set(a, optarg); break;
        case OPT_CHECK: a->check_config = true; break;
        case OPT_FAKE: a->fake_engine = optarg ? optarg : ""; break;
        case 'h': usage(stdout); return 1;
        case OPT_VERSION:
            printf("laded %s (protocol %d)\n", LADE_VERSION, IPC_PROTOCOL_VERSION);
            return 1;
        default: usage(stderr); return -EINVAL;
        }
    }
    if (r == 0 && optind < argc) {
        fprintf(stderr, "laded: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    return r;
}

static void conf_warn(void *user, const char *message)
{
    srv_log(SRV_LOG_WARNING, "%s", message);
}

/* Defaults < file < flags, then the cross-key rules. */
static int load_conf(const struct args *a, struct conf *ret)
{
    struct conf c;
    char err[512];
    int r = conf_defaults(&c);

    if (r < 0)
        return srv_log_errno(SRV_LOG_ERR, r, "Failed to set up the configuration");
    r = conf_load(&c, a->config, conf_warn, NULL, err, sizeof(err));
    if (r == -ENOENT && !a->config_explicit) {
        srv_log(SRV_LOG_INFO, "No '%s', using the defaults", a->config);
        r = 0;
    } else if (r < 0) {
        srv_log(SRV_LOG_ERR, "%s", r == -ENOENT ? "configuration file not found" : err);
    }
    for (unsigned i = 0; r == 0 && i < a->n_sets; i++)
        if ((r = conf_set_assignment(&c, a->sets[i], err, sizeof(err))) < 0)
            srv_log(SRV_LOG_ERR, "Bad --set '%s': %s", a->sets[i], err);
    if (r == 0 && (r = conf_check(&c, err, sizeof(err))) < 0)
        srv_log(SRV_LOG_ERR, "Invalid configuration: %s", err);
    /* [tuning] values are the model's to judge; checked here too, so that
     * --check-config and a reload report them without loading a model */
    struct llm_tuning tuning;
    if (r == 0 && (r = srv_tuning_from_conf(&c, &tuning, err, sizeof(err))) < 0)
        srv_log(SRV_LOG_ERR, "Invalid configuration: %s", err);
    /* [http] listen: an address this daemon may listen on */
    if (r == 0 && c.http.listen && c.http.listen[0] &&
        (r = srv_socket_tcp_addr(c.http.listen, c.http.allow_remote, NULL, err, sizeof(err))) < 0)
        srv_log(SRV_LOG_ERR, "Invalid configuration: [http] listen: %s", err);
    if (r < 0) {
        conf_free(&c);
        return r;
    }
    *ret = c;
    return 0;
}

struct daemon_state {
    struct args args;
    struct conf conf; /* the running configuration */
};

/* SIGHUP: read the file and flags again; reloadable keys take effect. */
static int reload_conf(void *ud, struct srv_config *ret)
{
    struct daemon_state *d = ud;
    struct conf loaded;
    int r = load_conf(&d->args, &loaded);

    if (r < 0)
        return r;
    r = conf_apply_reload(&d->conf, &loaded, conf_warn, NULL);
    conf_free(&loaded);
    if (r < 0)
        return r;
    *ret = (struct srv_config){ 0 };
    r = srv_config_from_conf(ret, &d->conf);
    if (r < 0)
        srv_config_done(ret);
    return r;
}

/* The socket's group. The default group missing (laded run by hand, where
 * the packaging's lade group does not exist) leaves the daemon's own, and
 * says so; a group set on purpose must exist. */
static int socket_gid(const struct daemon_state *d, const char *group, gid_t *ret)
{
    char buf[4096];
    struct group gr, *res = NULL;
    int r;

    *ret = (gid_t)-1;
    if (!group)
        return 0;
    r = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
    if (r == 0 && res) {
        *ret = gr.gr_gid;
        return 0;
    }
    if (!conf_is_set(&d->conf, "daemon", "socket_group")) {
        r = getgrgid_r(getegid(), &gr, buf, sizeof(buf), &res);
        srv_log(SRV_LOG_NOTICE,
                "Group '%s' does not exist: the socket keeps the daemon's group '%s' (set daemon.socket_group to choose one)",
                group, r == 0 && res ? gr.gr_name : "?");
        return 0;
    }
    srv_log(SRV_LOG_ERR,
            "Group '%s' for the socket does not exist (set daemon.socket_group, or empty to keep the daemon's)",
            group);
    return -ENOENT;
}

/* Our own socket, made once the model is loaded (nobody connects to a
 * daemon that cannot answer yet); srv_socket_check() ran before the load. */
static int make_socket(const struct srv_config *cfg, gid_t gid, struct srv_socket_file *ret_file)
{
    char err[512];
    int r = srv_socket_listen(cfg->socket_path, cfg->socket_mode, gid, ret_file, err, sizeof(err));

    if (r < 0)
        srv_log(SRV_LOG_ERR, "Failed to listen: %s", err);
    return r;
}

/* Before the load: the socket systemd passed (its backlog holds clients
 * until we serve), else our socket's group and path, checked, so that a
 * live daemon there or a missing group fails now rather than after a long
 * load. *ret_fd < 0: make our own (make_socket()) after the load. */
static int prepare_socket(const struct daemon_state *d, const struct srv_config *cfg, int *ret_fd,
                          gid_t *ret_gid)
{
    char err[512];
    int r = srv_sd_listen_fd(ret_fd);

    if (r != 0)
        return r < 0 ? r : 0;
    *ret_fd = -EBADF;
    if ((r = socket_gid(d, cfg->socket_group, ret_gid)) < 0)
        return r;
    if ((r = srv_socket_check(cfg->socket_path ? cfg->socket_path : "", err, sizeof(err))) < 0)
        srv_log(SRV_LOG_ERR, "Failed to listen: %s", err);
    return r;
}

/* A model load on its own thread, so that this one can take signals. */
struct load {
    const struct daemon_state *d;
    struct srv_engine engine;
    int r;
    int done_fd; /* eventfd: written when the load returns */
    atomic_bool cancel;
};

static bool load_cancelled(void *ud)
{
    struct load *l = ud;
    return atomic_load(&l->cancel);
}

static void *load_main(void *arg)
{
    struct load *l = arg;
    const struct daemon_state *d = l->d;

    l->r = d->args.fake_engine ?
                   srv_engine_fake_new(d->args.fake_engine, load_cancelled, l, &l->engine) :
                   srv_engine_llama_new(&d->conf, load_cancelled, l, &l->engine);
    eventfd_write(l->done_fd, 1);
    return NULL;
}

#define LOAD_STOP_S 5 /* after SIGTERM, how long a load may take to stop */

/* Wait for the load; SIGTERM or SIGINT (sfd) cancels it. A load that does
 * not stop within LOAD_STOP_S, or a second signal, ends the process: no
 * socket exists yet, nothing else needs undoing. */
static int wait_load(struct load *l, int sfd)
{
    struct pollfd p[2] = { { .fd = l->done_fd, .events = POLLIN },
                           { .fd = sfd, .events = POLLIN } };
    struct signalfd_siginfo si;
    int timeout = -1;

    for (;;) {
        int n = poll(p, 2, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return srv_log_errno(SRV_LOG_ERR, errno, "Failed to wait for the model load");
        if (p[0].revents)
            return atomic_load(&l->cancel) ? -ECANCELED : 0;
        if (n == 0 || timeout >= 0) {
            srv_log(SRV_LOG_ERR, "The model load did not stop %s; exiting",
                    n == 0 ? "within " STRINGIFY(LOAD_STOP_S) " s" : "before a second signal");
            _exit(EXIT_FAILURE);
        }
        if (read(sfd, &si, sizeof(si)) != sizeof(si))
            continue;
        srv_log(SRV_LOG_NOTICE, "Received %s while loading the model: cancelling the load",
                strsignal((int)si.ssi_signo));
        atomic_store(&l->cancel, true);
        timeout = LOAD_STOP_S * 1000;
    }
}

/* Load the engine on a thread while this one waits for SIGTERM or SIGINT,
 * which cancel the load: laded then exits non-zero. SIGHUP stays pending
 * (blocked) for the server's loop: the configuration just read is the one
 * loaded, and a reload asked for meanwhile happens once serving. */
static int load_engine(const struct daemon_state *d, struct srv_engine *ret)
{
    struct load l = { .d = d, .done_fd = eventfd(0, EFD_CLOEXEC) };
    srv_cleanup_close int done_fd = l.done_fd, sfd = -EBADF;
    sigset_t stop;
    pthread_t th;
    int r;

    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sfd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (done_fd < 0 || sfd < 0)
        return srv_log_errno(SRV_LOG_ERR, errno, "Failed to set up the model load");
    srv_log(SRV_LOG_INFO, "Loading the model '%s'",
            d->args.fake_engine ? "(fake engine)" : d->conf.model.path);
    if ((r = pthread_create(&th, NULL, load_main, &l)) != 0)
        return srv_log_errno(SRV_LOG_ERR, r, "Failed to start the model load");
    r = wait_load(&l, sfd);
    pthread_join(th, NULL);
    if (r == 0 && l.r < 0)
        srv_log_errno(SRV_LOG_ERR, l.r, "Failed to load the model");
    if (r == 0 && (r = l.r) == 0)
        *ret = l.engine;
    else if (l.r == 0)
        srv_engine_destroy(&l.engine); /* cancelled after it finished */
    if (r == -ECANCELED)
        srv_log(SRV_LOG_ERR, "Stopped before serving: the model load was cancelled");
    return r;
}

static void setup_process(void)
{
    sigset_t mask;
    struct rlimit rl;

    /* Signals arrive through the loop's signalfd; threads inherit the mask. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            srv_log_errno(SRV_LOG_DEBUG, errno, "Failed to raise the fd limit, ignoring");
    }
}

/* The TCP listener for HTTP and its key, when [http] asks for them. */
static int open_http(const struct srv_config *cfg, int *ret_fd, char **ret_key)
{
    char err[512], line[512];
    FILE *f;
    int r;

    *ret_fd = -EBADF;
    *ret_key = NULL;
    if (!cfg->http_listen)
        return 0;
    if (cfg->http_key_file) {
        f = fopen(cfg->http_key_file, "re");
        if (!f)
            return srv_log_errno(SRV_LOG_ERR, errno, "Failed to read '%s'", cfg->http_key_file);
        r = fgets(line, sizeof(line), f) != NULL;
        fclose(f);
        line[r ? strcspn(line, "\r\n") : 0] = '\0';
        if (!line[0]) {
            srv_log(SRV_LOG_ERR, "Failed to read a key from '%s': its first line is empty",
                    cfg->http_key_file);
            return -EINVAL;
        }
        if (strlen(line) >
            SRV_HTTP_AUTH_MAX - 7) { /* "Bearer " + key must fit the header laded keeps */
            srv_log(SRV_LOG_ERR, "Failed to use the key in '%s': longer than %d bytes",
                    cfg->http_key_file, SRV_HTTP_AUTH_MAX - 7);
            return -EINVAL;
        }
        if (!(*ret_key = strdup(line)))
            return -ENOMEM;
    }
    r = srv_socket_listen_tcp(cfg->http_listen, cfg->http_allow_remote, err, sizeof(err));
    if (r < 0) {
        srv_log(SRV_LOG_ERR, "Failed to listen: %s", err);
        free(*ret_key);
        *ret_key = NULL;
        return r;
    }
    *ret_fd = r;
    srv_log(SRV_LOG_NOTICE, "Serving HTTP on %s too%s", cfg->http_listen,
            *ret_key ? ", with a bearer key" : " (no key: any local user can connect)");
    return 0;
}

static int serve(struct daemon_state *d, struct srv_config *cfg)
{
    struct srv_engine engine = { 0 };
    struct srv_socket_file file = { 0 };
    struct srv *s = NULL;
    gid_t gid = (gid_t)-1;
    int fd = -EBADF, http_fd = -EBADF, r;
    char *key = NULL;

    if ((r = prepare_socket(d, cfg, &fd, &gid)) < 0)
        return r;
    if ((r = load_engine(d, &engine)) < 0) {
        if (fd >= 0)
            close(fd);
        return r;
    }
    if (fd < 0 && (fd = make_socket(cfg, gid, &file)) < 0) {
        srv_engine_destroy(&engine);
        return fd;
    }
    if ((r = open_http(cfg, &http_fd, &key)) == 0 && (r = srv_new(cfg, &engine, &s)) < 0)
        srv_log_errno(SRV_LOG_ERR, r, "Failed to set up the server");
    if (r < 0) {
        if (http_fd >= 0)
            close(http_fd);
        free(key);
        srv_engine_destroy(&engine);
        close(fd);
        srv_socket_remove(&file);
        return r;
    }
    s->reload = reload_conf;
    s->reload_ud = d;
    s->http_fd = http_fd;
    s->http_key = key;
    r = srv_run(s, fd, &file); /* closes fd, removes the file */
    srv_free(s);
    return r;
}

int main(int argc, char **argv)
{
    struct daemon_state d = { 0 };
    struct srv_config cfg = { 0 };
    int r = parse_args(argc, argv, &d.args);

    if (r != 0)
        return r > 0 ? EXIT_SUCCESS : 2;
    if (load_conf(&d.args, &d.conf) < 0)
        return EXIT_FAILURE;
    if ((r = srv_config_from_conf(&cfg, &d.conf)) < 0) {
        srv_log_errno(SRV_LOG_ERR, r, "Failed to set up the configuration");
    } else if (d.args.check_config) {
        /* laded(8): the effective configuration, in file syntax */
        r = conf_dump(&d.conf, stdout) < 0 || fflush(stdout) != 0 ? -EIO : 0;
    } else {
        srv_log_set_level(cfg.log_level);
        setup_process();
        r = serve(&d, &cfg);
    }
    srv_config_done(&cfg);
    conf_free(&d.conf);
    return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
