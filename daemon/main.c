/* laded: startup. Configuration (file, then flags), the listening socket
 * (from systemd or made here), the engine, then the server until SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conf/conf.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/socket.h"
#include "daemon/systemd.h"
#include "llama/llm.h"

#define DEFAULT_CONFIG "/etc/lade/laded.conf"
#define SETS_MAX 64

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
          "      --version            print the version\n", f);
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
        { "config", required_argument, NULL, 'c' },   { "socket", required_argument, NULL, 's' },
        { "model", required_argument, NULL, 'm' },    { "device", required_argument, NULL, 'd' },
        { "set", required_argument, NULL, OPT_SET },  { "check-config", no_argument, NULL, OPT_CHECK },
        { "fake-engine", optional_argument, NULL, OPT_FAKE }, /* tests only, undocumented */
        { "help", no_argument, NULL, 'h' },           { "version", no_argument, NULL, OPT_VERSION },
        { 0 },
    };
    int c, r = 0;

    *a = (struct args){ .config = DEFAULT_CONFIG };
    while (r == 0 && (c = getopt_long(argc, argv, "c:s:m:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; a->config_explicit = true; break;
        case 's': r = add_flag_set(a, 0, "daemon.socket", optarg); break;
        case 'm': r = add_flag_set(a, 1, "model.path", optarg); break;
        case 'd': r = add_flag_set(a, 2, "device.device", optarg); break;
        case OPT_SET: r = add_set(a, optarg); break;
        case OPT_CHECK: a->check_config = true; break;
        case OPT_FAKE: a->fake_engine = optarg ? optarg : ""; break;
        case 'h': usage(stdout); return 1;
        case OPT_VERSION: printf("laded %s (protocol %d)\n", LADE_VERSION, IPC_PROTOCOL_VERSION); return 1;
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
    srv_config_defaults(ret);
    r = srv_config_from_conf(ret, &d->conf);
    if (r < 0)
        srv_config_done(ret);
    return r;
}

static int socket_gid(const char *group, gid_t *ret)
{
    char buf[4096];
    struct group gr, *res = NULL;
    int r;

    *ret = (gid_t)-1;
    if (!group)
        return 0;
    r = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
    if (r != 0 || !res) {
        srv_log(SRV_LOG_ERR, "Group '%s' for the socket does not exist (set daemon.socket_group, or empty to keep the daemon's)", group);
        return -ENOENT;
    }
    *ret = gr.gr_gid;
    return 0;
}

/* The socket systemd passed, else one made at the configured path. */
static int open_socket(const struct srv_config *cfg, int *ret_fd, bool *ret_owned)
{
    char err[512];
    gid_t gid;
    int r = srv_sd_listen_fd(ret_fd);

    *ret_owned = false;
    if (r != 0)
        return r < 0 ? r : 0;
    if ((r = socket_gid(cfg->socket_group, &gid)) < 0)
        return r;
    r = srv_socket_listen(cfg->socket_path, cfg->socket_mode, gid, err, sizeof(err));
    if (r < 0) {
        srv_log(SRV_LOG_ERR, "Failed to listen: %s", err);
        return r;
    }
    *ret_fd = r;
    *ret_owned = true;
    return 0;
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
            srv_log(SRV_LOG_ERR, "Failed to read a key from '%s': its first line is empty", cfg->http_key_file);
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
    struct srv *s = NULL;
    char path[128];
    bool owned;
    int fd = -1, r;

    snprintf(path, sizeof(path), "%s", cfg->socket_path ? cfg->socket_path : "");
    int http_fd;
    char *key;

    if ((r = open_socket(cfg, &fd, &owned)) < 0)
        return r;
    if ((r = open_http(cfg, &http_fd, &key)) < 0) {
        close(fd);
        if (owned)
            unlink(path);
        return r;
    }
    r = d->args.fake_engine ? srv_engine_fake_new(d->args.fake_engine, &engine)
                            : srv_engine_llama_new(&d->conf, &engine);
    if (r < 0) {
        srv_log_errno(SRV_LOG_ERR, r, "Failed to load the model");
    } else if ((r = srv_new(cfg, &engine, &s)) < 0) {
        srv_log_errno(SRV_LOG_ERR, r, "Failed to set up the server");
        srv_engine_destroy(&engine);
    } else {
        s->reload = reload_conf;
        s->reload_ud = d;
        s->http_fd = http_fd;
        s->http_key = key;
        http_fd = -EBADF;
        key = NULL;
        r = srv_run(s, fd, owned);
        fd = -1; /* the server closed it */
        srv_free(s);
    }
    if (fd >= 0) {
        close(fd);
        if (owned)
            unlink(path);
    }
    if (http_fd >= 0)
        close(http_fd);
    free(key);
    return r;
}

int main(int argc, char **argv)
{
    struct daemon_state d = { 0 };
    struct srv_config cfg;
    char err[256];
    int r = parse_args(argc, argv, &d.args);

    if (r != 0)
        return r > 0 ? EXIT_SUCCESS : 2;
    if (load_conf(&d.args, &d.conf) < 0)
        return EXIT_FAILURE;
    srv_config_defaults(&cfg);
    snprintf(err, sizeof(err), "out of memory");
    if (srv_config_from_conf(&cfg, &d.conf) < 0 || srv_config_validate(&cfg, err, sizeof(err)) < 0) {
        srv_log(SRV_LOG_ERR, "Invalid configuration: %s", err);
        r = -EINVAL;
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
