/* Tool conversations through laded with the real engine (issue #18): a
 * lade-synth model carrying Qwen2.5's, Qwen3's or Llama 3.1's chat
 * template (from tests/llama/data/jinja-templates.json), on the Vulkan
 * device lade picks (lavapipe in CI). Over the socket, apply_template
 * gives @huggingface/jinja's rendering of every tool case of that
 * template (the Llama 3.1 refusal of two calls at once included), and a
 * chat with a tool call and its answer generates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

static json_t *root;
static struct e2e e; /* one test's laded, cleaned up even when it fails */

static int setup(void **state)
{
    json_error_t je;
    root = json_load_file(LADE_SOURCE_DIR "/tests/llama/data/jinja-templates.json", 0, &je);
    if (!root)
        fail_msg("jinja-templates.json: %s", je.text);
    return 0;
}

static int teardown(void **state)
{
    json_decref(root);
    return 0;
}

/* After each test, pass or fail: laded stopped, its folder removed. */
static int stop(void **state)
{
    char path[512];
    int rc = e.pid > 0 ? e2e_stop(&e) : 0;
    snprintf(path, sizeof(path), "%s/t.jinja", e.dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/m.gguf", e.dir);
    unlink(path);
    e2e_cleanup(&e);
    e.pid = -1;
    return rc == 0 ? 0 : -1;
}

static json_t *template_named(const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(root, "templates"), i, t)
    {
        if (!strcmp(json_string_value(json_object_get(t, "name")), name))
            return t;
    }
    fail_msg("no template '%s'", name);
    return NULL;
}

/* laded on a synth model with template tpl, in e's folder. */
static void start(json_t *tpl)
{
    char path[512], model[512], cmd[2048];
    e2e_init(&e);
    snprintf(path, sizeof(path), "%s/t.jinja", e.dir);
    snprintf(model, sizeof(model), "%s/m.gguf", e.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(json_string_value(json_object_get(tpl, "template")), f);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof(cmd), "'%s' --arch qwen2 --tied --chat-template '%s' test q8_0 '%s' 2>&1",
             LADE_SYNTH_PATH, path, model);
    assert_int_equal(system(cmd), 0);
    const char *extra[] = { "--model", model, "--set", "model.context_length=512", NULL };
    e2e_spawn(&e, e2e_real_engine, extra, -1);
    e2e_wait_ready(&e);
}

/* The reference's text with its BOS (bos_token) spelled as the synth
 * vocabulary's, <s>. */
static char *with_synth_bos(const char *want, const char *bos)
{
    size_t n = bos ? strlen(bos) : 0;
    char *out = malloc(strlen(want) + 4);
    if (n && !strncmp(want, bos, n))
        sprintf(out, "<s>%s", want + n);
    else
        strcpy(out, want);
    return out;
}

/* Every case of tpl with tools or tool calls and add_generation_prompt
 * (what laded asks for), its variables laded's own (no extra ones). */
static void check_template(const char *name)
{
    json_t *tpl = template_named(name), *c;
    const char *bos = json_string_value(json_object_get(tpl, "bos_token"));
    size_t j, n = 0;
    start(tpl);
    int fd = e2e_raw(&e);
    json_array_foreach(json_object_get(tpl, "cases"), j, c)
    {
        json_t *conv =
                json_array_get(json_object_get(root, "conversations"),
                               (size_t)json_integer_value(json_object_get(c, "conversation")));
        json_t *tools = json_is_true(json_object_get(c, "tools")) ? json_object_get(root, "tools") :
                                                                    NULL;
        if (!json_is_true(json_object_get(c, "add_generation_prompt")) ||
            json_object_get(c, "extra") ||
            (!tools && !json_object_get(json_array_get(conv, 1), "tool_calls")))
            continue;
        json_t *line = json_pack("{s:I, s:s, s:O}", "id", (json_int_t)j, "op", "apply_template",
                                 "messages", conv);
        if (tools)
            json_object_set(line, "tools", tools);
        char *text = json_dumps(line, JSON_COMPACT), id[32];
        e2e_send_str(fd, text);
        e2e_send_str(fd, "\n");
        snprintf(id, sizeof(id), "%zu", j);
        json_t *ev = e2e_read_final(fd, id, NULL, 0);
        assert_non_null(ev);
        const char *want = json_string_value(json_object_get(c, "expected"));
        if (want) {
            char *w = with_synth_bos(want, bos);
            if (strcmp(e2e_str(ev, "event"), "result") || strcmp(e2e_str(ev, "prompt"), w))
                fail_msg("%s case %zu: got %s\nwant %s", name, j, json_dumps(ev, 0), w);
            free(w);
            json_decref(ev);
        } else {
            e2e_expect_error(ev, "bad_field", "single tool-calls"); /* and frees ev */
        }
        json_decref(line);
        free(text);
        n++;
    }
    /* and a chat with a tool call and its answer generates (the synth
     * vocabulary spells most of a prompt in bytes: no tools list, to fit) */
    json_t *conv = json_array_get(json_object_get(root, "conversations"), 13);
    json_t *line = json_pack("{s:s, s:s, s:i, s:b, s:O}", "id", "g", "op", "chat", "max_tokens", 2,
                             "stream", false, "messages", conv);
    char *text = json_dumps(line, JSON_COMPACT);
    e2e_send_str(fd, text);
    e2e_send_str(fd, "\n");
    json_t *ev = e2e_read_final(fd, "g", NULL, 0);
    assert_non_null(ev);
    print_message("%s: %zu renderings equal to the reference; a chat with a tool call: %lld prompt "
                  "tokens\n",
                  name, n, (long long)e2e_int(ev, "stats", "prompt_tokens"));
    e2e_expect_done(ev); /* and frees ev */
    assert_true(n >= 5); /* qwen3's others set enable_thinking, which laded does not */
    json_decref(line);
    free(text);
    close(fd);
}

static void test_qwen2_5(void **state)
{
    check_template("qwen2.5");
}

static void test_qwen3(void **state)
{
    check_template("qwen3");
}

static void test_llama3_1(void **state)
{
    check_template("llama3.1-tools");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_qwen2_5, stop),
        cmocka_unit_test_teardown(test_qwen3, stop),
        cmocka_unit_test_teardown(test_llama3_1, stop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
