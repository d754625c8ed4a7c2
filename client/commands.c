/* lade: the commands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"

int cli_connect(struct cli *cli)
{
    int r = lade_client_connect(cli->socket, &cli->c);

    if (r == 0)
        return CLI_EXIT_OK;
    fprintf(stderr, "lade: failed to connect to '%s': %s\n",
            cli->socket           ? cli->socket :
            getenv("LADE_SOCKET") ? getenv("LADE_SOCKET") :
                                    LADE_CLIENT_DEFAULT_SOCKET,
            r == -EUSERS ? "too many connections" :
            r == -EPROTO ? "not a laded of this protocol version" :
                           strerror(-r));
    if (r == -EUSERS)
        return CLI_EXIT_BUSY;
    return r == -EPROTO ? CLI_EXIT_PROTOCOL : CLI_EXIT_CONNECT;
}

int cli_exit_for_code(const char *code)
{
    if (!strcmp(code, "busy") || !strcmp(code, "too_many_connections") ||
        !strcmp(code, "shutting_down"))
        return CLI_EXIT_BUSY;
    if (!strcmp(code, "cancelled"))
        return CLI_EXIT_INTERRUPTED;
    if (!strcmp(code, "protocol_version"))
        return CLI_EXIT_PROTOCOL;
    return CLI_EXIT_ERROR;
}

static void print_debug(const struct lade_event *ev, unsigned *steps, unsigned *tokens)
{
    if (ev->type == LADE_EVENT_TOKEN) {
        (*steps)++;
        *tokens += ev->n_tokens;
        fprintf(stderr, "\r\033[K[%u tokens, %u steps, %.2f tokens/step]", *tokens, *steps,
                *steps ? (double)*tokens / *steps : 0.0);
        return;
    }
    const struct lade_stats *s = &ev->stats;
    fprintf(stderr,
            "\n[%s: %u prompt + %u generated tokens, %u steps, %.2f tokens/step, %.1f tokens/s, "
            "acceptance %.2f, queue %.1f ms, prefill %.1f ms]\n",
            ev->finish_reason, s->prompt_tokens, s->generated_tokens, s->steps, s->tokens_per_step,
            s->tokens_per_s, s->acceptance, s->queue_ms, s->prefill_ms);
}

static int append(char **buf, size_t *len, const char *s, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);

    if (!nb)
        return -ENOMEM;
    memcpy(nb + *len, s, n);
    *len += n;
    nb[*len] = '\0';
    *buf = nb;
    return 0;
}

/* One event of the request: output it; > 0 when it was the last. */
static int on_event(struct cli *cli, const struct lade_event *ev, char **text, size_t *len,
                    unsigned *steps, unsigned *tokens, int *ret_exit)
{
    if (cli->json)
        printf("%s\n", ev->json);
    if (ev->type == LADE_EVENT_ERROR) {
        fprintf(stderr, "lade: %s: %s\n", ev->code, ev->message);
        *ret_exit = cli_exit_for_code(ev->code);
        return 1;
    }
    if ((ev->type == LADE_EVENT_TOKEN || ev->type == LADE_EVENT_DONE) && ev->text_len) {
        if (!cli->json)
            fwrite(ev->text, 1, ev->text_len, stdout);
        if (text && append(text, len, ev->text, ev->text_len) < 0)
            return -ENOMEM;
    }
    fflush(stdout);
    if (cli->debug && (ev->type == LADE_EVENT_TOKEN || ev->type == LADE_EVENT_DONE))
        print_debug(ev, steps, tokens);
    if (ev->type == LADE_EVENT_DONE) {
        if (!cli->json && !cli->debug)
            putchar('\n');
        *ret_exit = CLI_EXIT_OK;
        return 1;
    }
    return 0;
}

int cli_stream(struct cli *cli, const char *id, char **ret_text)
{
    struct lade_event ev;
    unsigned steps = 0, tokens = 0;
    bool cancel_sent = false;
    size_t len = 0;
    int exit_code = CLI_EXIT_PROTOCOL;

    for (;;) {
        if (cli_interrupted && !cancel_sent) {
            cancel_sent = lade_client_cancel(cli->c, "lade-cancel", id) == 0;
            if (!cancel_sent)
                return CLI_EXIT_INTERRUPTED;
        }
        int r = lade_client_next(cli->c, &ev, 100);
        if (r == 0)
            continue;
        if (r < 0) {
            fprintf(stderr, "lade: connection lost: %s\n", strerror(-r));
            return CLI_EXIT_PROTOCOL;
        }
        if (strcmp(ev.id, id) != 0) /* the cancel's own result, hello */
            continue;
        r = on_event(cli, &ev, ret_text, &len, &steps, &tokens, &exit_code);
        if (r != 0)
            return r < 0 ? CLI_EXIT_PROTOCOL : exit_code;
    }
}

/* PROMPT, or all of stdin for "-". */
static char *read_prompt(const char *arg)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (strcmp(arg, "-") != 0)
        return strdup(arg);
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, stdin);
        len += n;
        if (n == 0)
            break;
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

int cli_cmd_generate(struct cli *cli, int argc, char **argv)
{
    char *prompt;
    int r;

    if (argc > 1 || (argc == 0 && isatty(STDIN_FILENO))) {
        fprintf(stderr, "lade: generate takes one PROMPT ('-' or none with a pipe: stdin)\n");
        return CLI_EXIT_USAGE;
    }
    if ((r = cli_connect(cli)) != CLI_EXIT_OK)
        return r;
    prompt = read_prompt(argc ? argv[0] : "-");
    if (!prompt)
        return CLI_EXIT_ERROR;
    r = lade_client_generate(cli->c, "g1", prompt, &cli->opts);
    free(prompt);
    if (r < 0) {
        fprintf(stderr, "lade: failed to send the request: %s\n", strerror(-r));
        return CLI_EXIT_PROTOCOL;
    }
    return cli_stream(cli, "g1", NULL);
}

int cli_cmd_tokenize(struct cli *cli, int argc, char **argv)
{
    struct lade_event ev;
    char *toks;
    int r;

    if (argc != 1) {
        fprintf(stderr, "lade: tokenize takes one TEXT\n");
        return CLI_EXIT_USAGE;
    }
    if ((r = cli_connect(cli)) != CLI_EXIT_OK)
        return r;
    if (lade_client_tokenize(cli->c, "t1", argv[0], false) < 0 ||
        lade_client_next(cli->c, &ev, -1) != 1)
        return CLI_EXIT_PROTOCOL;
    if (ev.type == LADE_EVENT_ERROR) {
        fprintf(stderr, "lade: %s: %s\n", ev.code, ev.message);
        return cli_exit_for_code(ev.code);
    }
    toks = lade_event_field_json(&ev, "tokens");
    printf("%s\n", cli->json ? ev.json : toks ? toks : "[]");
    free(toks);
    return CLI_EXIT_OK;
}

int cli_cmd_simple(struct cli *cli, const char *op, int argc, char **argv)
{
    struct lade_event ev;
    int r;

    if (argc != 0) {
        fprintf(stderr, "lade: %s takes no arguments\n", op);
        return CLI_EXIT_USAGE;
    }
    if ((r = cli_connect(cli)) != CLI_EXIT_OK)
        return r;
    if (lade_client_simple(cli->c, "s1", op) < 0 || lade_client_next(cli->c, &ev, 30000) != 1)
        return CLI_EXIT_PROTOCOL;
    if (ev.type == LADE_EVENT_ERROR) {
        fprintf(stderr, "lade: %s: %s\n", ev.code, ev.message);
        return cli_exit_for_code(ev.code);
    }
    if (!strcmp(op, "stats") && cli->prometheus) {
        char *p = lade_event_field_string(&ev, "prometheus");
        fputs(p ? p : "", stdout);
        free(p);
        return p ? CLI_EXIT_OK : CLI_EXIT_PROTOCOL;
    }
    printf("%s\n", ev.json);
    return CLI_EXIT_OK;
}
