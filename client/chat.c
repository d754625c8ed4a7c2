/* lade chat: a REPL that keeps the conversation and sends all of it each
 * turn, so the model sees the history. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"

#define CHAT_TURNS_MAX 256 /* the protocol's message bound */

struct history {
    struct lade_message m[CHAT_TURNS_MAX];
    char *owned[CHAT_TURNS_MAX];
    uint32_t n;
};

static void history_reset(struct history *h, const char *system)
{
    for (uint32_t i = 0; i < h->n; i++)
        free(h->owned[i]);
    h->n = 0;
    if (system) {
        h->m[0] = (struct lade_message){ "system", system };
        h->owned[0] = NULL;
        h->n = 1;
    }
}

static int history_add(struct history *h, const char *role, char *content)
{
    if (h->n >= CHAT_TURNS_MAX) {
        free(content);
        return -1;
    }
    h->m[h->n] = (struct lade_message){ role, content };
    h->owned[h->n++] = content;
    return 0;
}

static void history_print(const struct history *h)
{
    for (uint32_t i = 0; i < h->n; i++)
        printf("[%s] %s\n", h->m[i].role, h->m[i].content);
}

/* A command line (/reset...): true when it was one; *quit for /quit. */
static bool command(struct cli *cli, struct history *h, const char *line, bool *quit)
{
    if (!strcmp(line, "/quit") || !strcmp(line, "/exit"))
        *quit = true;
    else if (!strcmp(line, "/reset"))
        history_reset(h, cli->system);
    else if (!strcmp(line, "/history"))
        history_print(h);
    else
        return false;
    return true;
}

/* One turn; returns an exit code (the conversation goes on unless it is a
 * connection problem). */
static int turn(struct cli *cli, struct history *h, char *line, unsigned n)
{
    char id[32], *reply = NULL;
    int r;

    if (history_add(h, "user", line) < 0) {
        fprintf(stderr, "lade: the conversation is too long, /reset it\n");
        return CLI_EXIT_ERROR;
    }
    snprintf(id, sizeof(id), "chat-%u", n);
    if (lade_client_chat(cli->c, id, h->m, h->n, &cli->opts) < 0)
        return CLI_EXIT_PROTOCOL;
    r = cli_stream(cli, id, &reply);
    if (r == CLI_EXIT_OK && history_add(h, "assistant", reply ? reply : strdup("")) == 0)
        return r;
    free(reply);
    h->n--; /* the turn failed: forget the question too */
    free(h->owned[h->n]);
    return r;
}

int cli_cmd_chat(struct cli *cli, int argc, char **argv)
{
    struct history h = { 0 };
    bool tty = isatty(STDIN_FILENO), quit = false;
    char *line = NULL;
    size_t cap = 0;
    unsigned n = 0;
    int r;

    if (argc != 0) {
        fprintf(stderr, "lade: chat takes no arguments\n");
        return CLI_EXIT_USAGE;
    }
    if ((r = cli_connect(cli)) != CLI_EXIT_OK)
        return r;
    history_reset(&h, cli->system);
    if (tty)
        fprintf(stderr, "Chatting with %s (/reset, /history, /quit)\n", lade_client_model(cli->c));
    while (!quit && r != CLI_EXIT_PROTOCOL) {
        if (tty)
            fputs("> ", stderr);
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0)
            break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || command(cli, &h, line, &quit))
            continue;
        cli_interrupted = 0;
        r = turn(cli, &h, strdup(line), ++n);
    }
    free(line);
    history_reset(&h, NULL);
    return r == CLI_EXIT_INTERRUPTED ? CLI_EXIT_OK : r;
}
