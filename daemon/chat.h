/* daemon: chat templates. The GGUF's tokenizer.chat_template is a Jinja
 * program; laded does not run Jinja, it recognises the few template
 * families models ship and renders them itself. Pure. */
#ifndef LADE_DAEMON_CHAT_H
#define LADE_DAEMON_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/ipc.h"

enum srv_tmpl {
    SRV_TMPL_NONE = 0, /* unknown or absent: chat is refused */
    SRV_TMPL_LLAMA2, /* [INST] ... [/INST], <<SYS>> */
    SRV_TMPL_CHATML, /* <|im_start|>role ... <|im_end|> */
    SRV_TMPL_ZEPHYR, /* <|user|> ... </s> (TinyLlama chat) */
};

enum srv_tmpl srv_chat_detect(const char *tmpl);
const char *srv_chat_name(enum srv_tmpl t);

struct srv_chat_prompt {
    char *text; /* rendered prompt, to tokenize with special tokens */
    size_t len;
    bool add_bos; /* tokenize with BOS */
    const char *stop; /* implicit stop string of the template, or NULL */
};

/* -EOPNOTSUPP for SRV_TMPL_NONE, -EINVAL for a conversation the template
 * cannot express (message with a reterr), -ENOMEM. */
int srv_chat_render(enum srv_tmpl t, const struct ipc_message *msgs, uint32_t n,
                    struct srv_chat_prompt *ret, char *reterr, size_t errlen);
void srv_chat_prompt_done(struct srv_chat_prompt *p);

#endif
