/* lade: argument parsing and dispatch. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli.h"

volatile sig_atomic_t cli_interrupted;

static void on_sigint(int sig)
{
    cli_interrupted = 1;
}

static void usage(FILE *f)
{
    fputs("Usage: lade [--socket PATH] COMMAND [OPTIONS] [ARGS]\n"
          "Talk to laded, the lookahead-decoding LLaMA daemon.\n\n"
          "Commands:\n"
          "  generate [PROMPT]   complete PROMPT ('-' or none: stdin), streaming the tokens\n"
          "  chat                interactive chat (/reset, /history, /quit)\n"
          "  tokenize TEXT       print the token ids of TEXT\n"
          "  info                model, device, limits, versions\n"
          "  stats [--prometheus]  counters, or the Prometheus exposition\n"
          "  health              is the daemon serving\n\n"
          "Generation options:\n"
          "  -n, --max-tokens N  --temperature T  --top-k K  --top-p P  --min-p P\n"
          "  --repeat-penalty R  --seed S  --stop TEXT (up to 8)\n"
          "  --lookahead N,W,G   --no-lookahead   --no-stream\n"
          "  --system TEXT       chat: system message\n"
          "  --json              print the protocol events as they come\n"
          "  --debug             tokens/s and tokens per step on stderr\n\n"
          "The socket is --socket, else $LADE_SOCKET, else " LADE_CLIENT_DEFAULT_SOCKET ".\n"
          "Exit codes: 0 ok, 1 server error, 2 usage, 3 no daemon, 4 busy, 5 protocol or\n"
          "connection error, 130 interrupted.\n",
          f);
}

static int parse_lookahead(struct cli *cli, const char *s)
{
    unsigned n = 0, w = 0, g = 0;

    if (sscanf(s, "%u,%u,%u", &n, &w, &g) < 1)
        return -EINVAL;
    cli->opts.lookahead = 1;
    cli->opts.la_n = n;
    cli->opts.la_w = w;
    cli->opts.la_g = g;
    return 0;
}

/* Options valid for every command; returns optind or -1. Before the
 * command (in_order) parsing stops at the first non-option. */
static int parse_opts(struct cli *cli, int argc, char **argv, bool in_order)
{
    enum {
        O_TEMP = 256,
        O_TOPK,
        O_TOPP,
        O_MINP,
        O_REP,
        O_SEED,
        O_STOP,
        O_LA,
        O_NOLA,
        O_NOSTREAM,
        O_SYS,
        O_JSON,
        O_DEBUG,
        O_SOCKET,
        O_PROM
    };
    static const struct option opts[] = {
        { "max-tokens", required_argument, NULL, 'n' },
        { "temperature", required_argument, NULL, O_TEMP },
        { "top-k", required_argument, NULL, O_TOPK },
        { "top-p", required_argument, NULL, O_TOPP },
        { "min-p", required_argument, NULL, O_MINP },
        { "repeat-penalty", required_argument, NULL, O_REP },
        { "seed", required_argument, NULL, O_SEED },
        { "stop", required_argument, NULL, O_STOP },
        { "lookahead", required_argument, NULL, O_LA },
        { "no-lookahead", no_argument, NULL, O_NOLA },
        { "no-stream", no_argument, NULL, O_NOSTREAM },
        { "system", required_argument, NULL, O_SYS },
        { "json", no_argument, NULL, O_JSON },
        { "debug", no_argument, NULL, O_DEBUG },
        { "socket", required_argument, NULL, O_SOCKET },
        { "prometheus", no_argument, NULL, O_PROM },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int c;

    optind = 0; /* full reset: the ordering mode changes between calls */
    while ((c = getopt_long(argc, argv, in_order ? "+n:h" : "n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': cli->opts.max_tokens = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_TEMP: cli->opts.temperature = strtod(optarg, NULL); break;
        case O_TOPK: cli->opts.top_k = (int32_t)strtol(optarg, NULL, 10); break;
        case O_TOPP: cli->opts.top_p = strtod(optarg, NULL); break;
        case O_MINP: cli->opts.min_p = strtod(optarg, NULL); break;
        case O_REP: cli->opts.repeat_penalty = strtod(optarg, NULL); break;
        case O_SEED: cli->opts.seed = strtoll(optarg, NULL, 10); break;
        case O_STOP:
            if (cli->opts.n_stop >= 8)
                return -1;
            cli->stop[cli->opts.n_stop++] = optarg;
            break;
        case O_LA:
            if (parse_lookahead(cli, optarg) < 0)
                return -1;
            break;
        case O_NOLA: cli->opts.lookahead = 0; break;
        case O_NOSTREAM: cli->opts.stream = false; break;
        case O_SYS: cli->system = optarg; break;
        case O_JSON: cli->json = true; break;
        case O_DEBUG: cli->debug = true; break;
        case O_SOCKET: cli->socket = optarg; break;
        case O_PROM: cli->prometheus = true; break;
        case 'h': usage(stdout); exit(CLI_EXIT_OK);
        default: return -1;
        }
    }
    cli->opts.stop = cli->stop;
    return optind;
}

int main(int argc, char **argv)
{
    struct cli cli = { 0 };
    struct sigaction sa = { .sa_handler = on_sigint };
    const char *cmd;
    int i, r;

    lade_gen_opts_init(&cli.opts);
    i = parse_opts(&cli, argc, argv, true); /* options before the command */
    if (i < 0 || i >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    cmd = argv[i];
    argc -= i;
    argv += i;
    if (parse_opts(&cli, argc, argv, false) < 0) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    sigaction(SIGINT, &sa, NULL);
    argc -= optind;
    argv += optind;
    if (!strcmp(cmd, "generate"))
        r = cli_cmd_generate(&cli, argc, argv);
    else if (!strcmp(cmd, "chat"))
        r = cli_cmd_chat(&cli, argc, argv);
    else if (!strcmp(cmd, "tokenize"))
        r = cli_cmd_tokenize(&cli, argc, argv);
    else if (!strcmp(cmd, "info") || !strcmp(cmd, "stats") || !strcmp(cmd, "health"))
        r = cli_cmd_simple(&cli, cmd, argc, argv);
    else {
        fprintf(stderr, "lade: unknown command '%s'\n", cmd);
        usage(stderr);
        r = CLI_EXIT_USAGE;
    }
    lade_client_free(cli.c);
    return r;
}
