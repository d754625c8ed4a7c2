/* daemon: rendering of conversations: the model's own template through
 * llama/'s Jinja interpreter, or the built-in formats of the known
 * template families. */
#include "daemon/chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama/jinja.h"

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

/* Whether the conversation uses tools: the built-in formats have no way to
 * say them. */
static bool uses_tools(const struct ipc_message *msgs, uint32_t n, const json_t *tools)
{
    for (uint32_t i = 0; i < n; i++)
        if (msgs[i].role == IPC_ROLE_TOOL || msgs[i].tool_calls)
            return true;
    return tools != NULL;
}

int srv_chat_render(enum srv_tmpl t, const struct ipc_message *msgs, uint32_t n,
                    const json_t *tools, struct srv_chat_prompt *ret, char *reterr, size_t errlen)
{
    struct srv_chat_prompt p = { 0 };
    FILE *f;
    int r = 0;

    if (t == SRV_TMPL_NONE) {
        snprintf(reterr, errlen, "the model has no chat template laded knows");
        return -EOPNOTSUPP;
    }
    if (uses_tools(msgs, n, tools)) {
        snprintf(reterr, errlen,
                 "tools need the model's own chat template; laded renders this model's "
                 "conversations in its built-in '%s' format, which has none",
                 srv_chat_name(t));
        return -EINVAL;
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

struct srv_chat {
    struct llm_jinja *jinja; /* the model's template; NULL: the fallback */
    enum srv_tmpl family; /* the fallback, and the stop string's source */
    char *bos, *eos; /* token texts, "" when unknown */
    char why[320]; /* why the template is not used, "" if it is */
};

/* A JSON value as the template sees it (Python's json.loads: objects in
 * their order, integers as integers). ipc/ bounded its depth. NULL on
 * ENOMEM. */
static struct llm_jval *from_json(struct llm_jenv *e, const json_t *v)
{
    struct llm_jval *out;
    const char *key;
    json_t *x;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        out = llm_jval_dict(e);
        json_object_foreach((json_t *)v, key, x)
        {
            if (!out || llm_jval_put(e, out, key, from_json(e, x)) < 0)
                return NULL;
        }
        return out;
    case JSON_ARRAY:
        out = llm_jval_list(e);
        json_array_foreach(v, i, x)
        {
            if (!out || llm_jval_push(e, out, from_json(e, x)) < 0)
                return NULL;
        }
        return out;
    case JSON_STRING: return llm_jval_str(e, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return llm_jval_int(e, json_integer_value(v));
    case JSON_REAL: return llm_jval_float(e, json_real_value(v));
    case JSON_TRUE: return llm_jval_bool(e, true);
    case JSON_FALSE: return llm_jval_bool(e, false);
    default: return llm_jval_none(e);
    }
}

static struct llm_jval *str_val(struct llm_jenv *e, const char *s)
{
    return llm_jval_str(e, s, strlen(s));
}

/* One message as HF passes it: role and content, and the tool fields only
 * where the message has them (templates test `is defined`). */
static struct llm_jval *message_val(struct llm_jenv *e, const struct ipc_message *msg)
{
    struct llm_jval *m = llm_jval_dict(e);
    int r = m ? 0 : -ENOMEM;

    if (r == 0)
        r = llm_jval_put(e, m, "role", str_val(e, ipc_role_name(msg->role)));
    if (r == 0)
        r = llm_jval_put(e, m, "content", str_val(e, msg->content));
    if (r == 0 && msg->tool_calls)
        r = llm_jval_put(e, m, "tool_calls", from_json(e, msg->tool_calls));
    if (r == 0 && msg->tool_call_id)
        r = llm_jval_put(e, m, "tool_call_id", str_val(e, msg->tool_call_id));
    if (r == 0 && msg->name)
        r = llm_jval_put(e, m, "name", str_val(e, msg->name));
    return r == 0 ? m : NULL;
}

/* The variables HF's apply_chat_template passes to a chat template:
 * messages, tools (only when the request has some, as undefined otherwise),
 * add_generation_prompt (always: laded renders prompts for a reply),
 * bos_token, eos_token. */
static int chat_env(const struct srv_chat *c, const struct ipc_message *msgs, uint32_t n,
                    const json_t *tools, struct llm_jenv **ret)
{
    struct llm_jenv *e = NULL;
    struct llm_jval *g, *list;
    int r = llm_jenv_new(&e);

    if (r < 0)
        return r;
    g = llm_jenv_globals(e);
    list = llm_jval_list(e);
    r = list ? 0 : -ENOMEM;
    for (uint32_t i = 0; i < n && r == 0; i++)
        r = llm_jval_push(e, list, message_val(e, &msgs[i]));
    if (r == 0)
        r = llm_jval_put(e, g, "messages", list);
    if (r == 0 && tools)
        r = llm_jval_put(e, g, "tools", from_json(e, tools));
    if (r == 0)
        r = llm_jval_put(e, g, "add_generation_prompt", llm_jval_bool(e, true));
    if (r == 0)
        r = llm_jval_put(e, g, "bos_token", llm_jval_str(e, c->bos, strlen(c->bos)));
    if (r == 0)
        r = llm_jval_put(e, g, "eos_token", llm_jval_str(e, c->eos, strlen(c->eos)));
    if (r < 0) {
        llm_jenv_free(e);
        return r;
    }
    *ret = e;
    return 0;
}

static int render_jinja(const struct srv_chat *c, const struct ipc_message *msgs, uint32_t n,
                        const json_t *tools, struct srv_chat_prompt *ret, char *reterr,
                        size_t errlen)
{
    struct srv_chat_prompt p = { 0 };
    struct llm_jenv *e = NULL;
    char err[256] = "";
    size_t bl = strlen(c->bos);
    int r = chat_env(c, msgs, n, tools, &e);

    if (r == 0)
        r = llm_jinja_render(c->jinja, e, NULL, &p.text, &p.len, err, sizeof(err));
    llm_jenv_free(e);
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        snprintf(reterr, errlen, "the chat template failed: %s", err);
        return -EINVAL;
    }
    /* A leading BOS text becomes the tokenizer's BOS: the id is then right
     * whether or not the tokenizer maps special-token text. */
    if (bl && p.len >= bl && memcmp(p.text, c->bos, bl) == 0) {
        memmove(p.text, p.text + bl, p.len - bl + 1);
        p.len -= bl;
        p.add_bos = true;
    }
    p.stop = c->family == SRV_TMPL_CHATML ? "<|im_end|>" :
             c->family == SRV_TMPL_ZEPHYR ? "</s>" :
                                            NULL;
    *ret = p;
    return 0;
}

/* Parse the template and render a probe conversation with it; a template
 * that fails either way is not used, and why is kept. */
static int try_template(struct srv_chat *c, const char *tmpl)
{
    static const struct ipc_message probe[] = {
        { .role = IPC_ROLE_USER, .content = "Hello" },
        { .role = IPC_ROLE_ASSISTANT, .content = "Hi." },
        { .role = IPC_ROLE_USER, .content = "How are you?" },
    };
    struct srv_chat_prompt p = { 0 };
    char err[256] = "";
    int r = llm_jinja_parse(tmpl, strlen(tmpl), &c->jinja, err, sizeof(err));

    if (r == 0)
        r = render_jinja(c, probe, 3, NULL, &p, err, sizeof(err));
    if (r == 0 && p.len == 0 && !p.add_bos) {
        snprintf(err, sizeof(err), "it renders nothing");
        r = -EINVAL;
    }
    srv_chat_prompt_done(&p);
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        snprintf(c->why, sizeof(c->why), "%s", err);
        llm_jinja_free(c->jinja);
        c->jinja = NULL;
    }
    return 0;
}

int srv_chat_new(const char *tmpl, const char *bos, const char *eos, struct srv_chat **ret)
{
    struct srv_chat *c = calloc(1, sizeof(*c));
    int r;

    if (!c)
        return -ENOMEM;
    c->family = srv_chat_detect(tmpl);
    c->bos = strdup(bos ? bos : "");
    c->eos = strdup(eos ? eos : "");
    r = c->bos && c->eos ? 0 : -ENOMEM;
    if (r == 0 && tmpl && *tmpl)
        r = try_template(c, tmpl);
    if (r < 0) {
        srv_chat_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

void srv_chat_free(struct srv_chat *c)
{
    if (!c)
        return;
    llm_jinja_free(c->jinja);
    free(c->bos);
    free(c->eos);
    free(c);
}

const char *srv_chat_format(const struct srv_chat *c)
{
    return c->jinja ? "jinja" : srv_chat_name(c->family);
}

const char *srv_chat_fallback_reason(const struct srv_chat *c)
{
    return c->why[0] ? c->why : NULL;
}

int srv_chat_apply(const struct srv_chat *c, const struct ipc_message *msgs, uint32_t n,
                   const json_t *tools, struct srv_chat_prompt *ret, char *reterr, size_t errlen)
{
    if (c->jinja)
        return render_jinja(c, msgs, n, tools, ret, reterr, errlen);
    return srv_chat_render(c->family, msgs, n, tools, ret, reterr, errlen);
}
