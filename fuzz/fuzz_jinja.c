/* libFuzzer target for the chat-template interpreter: the bytes are a
 * template, rendered (when it parses) with a small conversation, a tool and
 * a namespace-friendly set of globals, under limits small enough that a
 * run stays fast: any crash, leak, sanitizer report or slow unit is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llama/llm.h"

static struct llm_jval *str(struct llm_jenv *e, const char *s)
{
    return llm_jval_str(e, s, strlen(s));
}

static struct llm_jval *message(struct llm_jenv *e, const char *role, const char *content)
{
    struct llm_jval *m = llm_jval_dict(e);
    if (m && (llm_jval_put(e, m, "role", str(e, role)) ||
              llm_jval_put(e, m, "content", str(e, content))))
        return NULL;
    return m;
}

static int globals(struct llm_jenv *e)
{
    struct llm_jval *g = llm_jenv_globals(e), *msgs = llm_jval_list(e), *tools = llm_jval_list(e);
    struct llm_jval *tool = llm_jval_dict(e), *call = message(e, "assistant", "");
    struct llm_jval *calls = llm_jval_list(e), *fn = llm_jval_dict(e), *args = llm_jval_dict(e);
    if (!msgs || !tools || !tool || !call || !calls || !fn || !args)
        return -1;
    return llm_jval_push(e, msgs, message(e, "system", "Be brief.")) ||
           llm_jval_push(e, msgs, message(e, "user", "  Hi <think>x</think> \xc3\xa9 ")) ||
           llm_jval_put(e, args, "city", str(e, "Paris")) ||
           llm_jval_put(e, args, "n", llm_jval_int(e, 3)) ||
           llm_jval_put(e, fn, "name", str(e, "get_weather")) ||
           llm_jval_put(e, fn, "arguments", args) || llm_jval_put(e, tool, "function", fn) ||
           llm_jval_push(e, calls, tool) || llm_jval_put(e, call, "tool_calls", calls) ||
           llm_jval_push(e, msgs, call) ||
           llm_jval_push(e, msgs, message(e, "tool", "{\"t\": 21.5}")) ||
           llm_jval_push(e, tools, tool) || llm_jval_put(e, g, "messages", msgs) ||
           llm_jval_put(e, g, "tools", tools) ||
           llm_jval_put(e, g, "add_generation_prompt", llm_jval_bool(e, true)) ||
           llm_jval_put(e, g, "bos_token", str(e, "<s>")) ||
           llm_jval_put(e, g, "eos_token", str(e, "</s>")) ||
           llm_jval_put(e, g, "x", llm_jval_float(e, 0.5)) ||
           llm_jval_put(e, g, "none_value", llm_jval_none(e));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct llm_jinja_limits lim = { .max_output = 1 << 16,
                                          .max_memory = 1 << 22,
                                          .max_steps = 1 << 16 };
    struct llm_jinja *t = NULL;
    struct llm_jenv *e = NULL;
    char err[256], *out = NULL;
    size_t n;

    if (llm_jinja_parse((const char *)data, size, &t, err, sizeof(err)) < 0)
        return 0;
    if (llm_jenv_new(&e) == 0 && globals(e) == 0 &&
        llm_jinja_render(t, e, &lim, &out, &n, err, sizeof(err)) == 0)
        free(out);
    llm_jenv_free(e);
    llm_jinja_free(t);
    return 0;
}
