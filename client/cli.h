/* lade: the command-line client, built on liblade-client only. */
#ifndef LADE_CLIENT_CLI_H
#define LADE_CLIENT_CLI_H

#include <signal.h>
#include <stdbool.h>

#include "ipc/lade-client.h"

/* Documented exit codes (lade(1), docs/protocol.md). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_ERROR = 1, /* the server answered with an error */
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_CONNECT = 3, /* no daemon at the socket */
    CLI_EXIT_BUSY = 4, /* busy, too many connections, shutting down: try later */
    CLI_EXIT_PROTOCOL = 5, /* connection lost or a reply that makes no sense */
    CLI_EXIT_INTERRUPTED = 130,
};

struct cli {
    const char *socket;
    struct lade_client *c;
    struct lade_gen_opts opts;
    const char *stop[8];
    bool json; /* print raw events */
    bool debug; /* tokens/s and tokens per step as they come */
    bool prometheus; /* stats: the text exposition */
    const char *system;
};

extern volatile sig_atomic_t cli_interrupted;

int cli_connect(struct cli *cli);
/* Exit code for an error event's code. */
int cli_exit_for_code(const char *code);
/* Wait for the event that ends request id, printing tokens as they come
 * (or raw events with --json); *ret_text collects the completion when not
 * NULL (malloc'd). Returns an exit code. Ctrl-C cancels the request. */
int cli_stream(struct cli *cli, const char *id, char **ret_text);

int cli_cmd_generate(struct cli *cli, int argc, char **argv);
int cli_cmd_chat(struct cli *cli, int argc, char **argv);
int cli_cmd_tokenize(struct cli *cli, int argc, char **argv);
int cli_cmd_simple(struct cli *cli, const char *op, int argc, char **argv);

#endif
