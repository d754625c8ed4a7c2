/* daemon: rendering of conversations with the known template families. */
#include "daemon/chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum srv_tmpl srv_chat_detect(const char *tmpl)
{
    if (!tmpl || !*tmpl)
        return SRV_TMPL_NONE;
    if (strstr(tmpl, "<|im_start|>"))
        return SRV_TMPL_CHATML;
    if (strstr(tmpl, "[INST]"))
        return SRV_TMPL_LLAMA2;
    if (strstr(tmpl, "<|user|>") && strstr(tmpl, "<|assistant|>"))
        return SRV_TMPL_ZEPHYR;
    return SRV_TMPL_NONE;
}

const char *srv_chat_name(enum srv_tmpl t)
{
    static const char *const names[] = { NULL, "llama2", "chatml", "zephyr" };
    return (unsigned)t < 4 ? names[t] : NULL;
}

/* open_memstream collects the prompt; fputs failures show up at fclose. */
static void render_chatml(FILE *f, const struct ipc_message *m, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, "<|im_start|>%s\n%s<|im_end|>\n", ipc_role_name(m[i].role), m[i].content);
    fputs("<|im_start|>assistant\n", f);
}

static void render_zephyr(FILE *f, const struct ipc_message *m, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, "<|%s|>\n%s</s>\n", ipc_role_name(m[i].role), m[i].content);
    fputs("<|assistant|>\n", f);
}

/* Llama-2: a system message folds into the first user turn; turns must
 * alternate user/assistant and end with a user turn. */
static int render_llama2(FILE *f, const struct ipc_message *m, uint32_t n, char *reterr,
                         size_t errlen)
{
    const char *sys = NULL;
    uint32_t i = 0;

    if (n > 0 && m[0].role == IPC_ROLE_SYSTEM)
        sys = m[i++].content;
    if (i >= n || m[n - 1].role != IPC_ROLE_USER) {
        snprintf(reterr, errlen, "llama2 chat needs a user message last");
        return -EINVAL;
    }
    for (uint32_t turn = 0; i < n; i++, turn++) {
        enum ipc_role want = turn % 2 ? IPC_ROLE_ASSISTANT : IPC_ROLE_USER;
        if (m[i].role != want) {
            snprintf(reterr, errlen,
                     "llama2 chat needs user and assistant messages in turn (message %u)", i);
            return -EINVAL;
        }
        if (want == IPC_ROLE_ASSISTANT) {
            fprintf(f, " %s </s><s>", m[i].content);
            continue;
        }
        fputs("[INST] ", f);
        if (sys && turn == 0)
            fprintf(f, "<<SYS>>\n%s\n<</SYS>>\n\n", sys);
        fprintf(f, "%s [/INST]", m[i].content);
    }
    return 0;
}

int srv_chat_render(enum srv_tmpl t, const struct ipc_message *msgs, uint32_t n,
                    struct srv_chat_prompt *ret, char *reterr, size_t errlen)
{
    struct srv_chat_prompt p = { 0 };
    FILE *f;
    int r = 0;

    if (t == SRV_TMPL_NONE) {
        snprintf(reterr, errlen, "the model has no chat template laded knows");
        return -EOPNOTSUPP;
    }
    f = open_memstream(&p.text, &p.len);
    if (!f)
        return -ENOMEM;
    switch (t) {
    case SRV_TMPL_CHATML:
        render_chatml(f, msgs, n);
        p.stop = "<|im_end|>";
        break;
    case SRV_TMPL_ZEPHYR:
        render_zephyr(f, msgs, n);
        p.add_bos = true;
        p.stop = "</s>";
        break;
    default:
        r = render_llama2(f, msgs, n, reterr, errlen);
        p.add_bos = true;
        break;
    }
    if (fclose(f) != 0 && r == 0)
        r = -ENOMEM;
    if (r < 0) {
        free(p.text);
        return r;
    }
    *ret = p;
    return 0;
}

void srv_chat_prompt_done(struct srv_chat_prompt *p)
{
    free(p->text);
    *p = (struct srv_chat_prompt){ 0 };
}
