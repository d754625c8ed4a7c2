/* daemon: chat templates. The GGUF's tokenizer.chat_template is a Jinja
 * program, rendered by llama/'s interpreter. A template that interpreter
 * cannot render falls back to the built-in format of its family (Llama 2,
 * ChatML, Zephyr, recognised by its text), or chat is refused. Pure: the
 * caller logs. */
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

/* The built-in format of family t. -EOPNOTSUPP for SRV_TMPL_NONE, -EINVAL
 * for a conversation the template cannot express (message with a reterr),
 * tools included (tools, role tool, tool_calls: the built-in formats have
 * no way to say them), -ENOMEM. */
int srv_chat_render(enum srv_tmpl t, const struct ipc_message *msgs, uint32_t n,
                    const json_t *tools, struct srv_chat_prompt *ret, char *reterr, size_t errlen);
void srv_chat_prompt_done(struct srv_chat_prompt *p);

/* The model's chat format, chosen once at load. */
struct srv_chat; /* opaque */

/* tmpl, bos and eos (the BOS and EOS tokens' text) may be NULL. The
 * template is used when it parses and renders a probe conversation; else
 * the family fallback, with the reason kept for srv_chat_fallback_reason.
 * 0 or -ENOMEM. */
int srv_chat_new(const char *tmpl, const char *bos, const char *eos, struct srv_chat **ret);
void srv_chat_free(struct srv_chat *c);
/* "jinja" for the model's own template, the fallback family's name, or
 * NULL when chat is refused. */
const char *srv_chat_format(const struct srv_chat *c);
/* Why the model's template is not used; NULL when it is, or there is none. */
const char *srv_chat_fallback_reason(const struct srv_chat *c);
/* Render a conversation as srv_chat_render does, with the model's format.
 * The template sees what Hugging Face's apply_chat_template passes it:
 * messages (with tool_calls, tool_call_id and name where a message has
 * them), tools (the request's, when it has some; NULL: undefined),
 * add_generation_prompt true, bos_token, eos_token. A template that fails
 * on this conversation (raise_exception, a limit) gives -EINVAL and its
 * message. The prompt starts with the BOS token's text only as add_bos:
 * the tokenizer then adds the id itself. */
int srv_chat_apply(const struct srv_chat *c, const struct ipc_message *msgs, uint32_t n,
                   const json_t *tools, struct srv_chat_prompt *ret, char *reterr, size_t errlen);

#endif
