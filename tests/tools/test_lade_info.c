/* tools/lade-info.c: `lade-info --model` prints what lade reads of a model.
 * Run as a user runs it, on stories260K (models/), on lade-synth's
 * architecture fixtures (tests/llama/CMakeLists.txt), on a vocabulary-only
 * BPE fixture (lade cannot run it, but reads its tokenizer), and on
 * lade-synth models carrying chat templates from jinja-templates.json: the
 * format laded would choose and a conversation rendered with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#define ARCH_DIR LADE_BINARY_DIR "/tests/llama/arch/"

/* Runs cmd with the shell; its stdout (malloc'd) in *ret_out; its exit
 * status. */
static int run(const char *cmd, char **ret_out)
{
    FILE *p = popen(cmd, "r");
    size_t n = 0, cap = 1 << 16;
    char *out = malloc(cap);
    assert_non_null(p);
    assert_non_null(out);
    while (!feof(p) && n + 1 < cap)
        n += fread(out + n, 1, cap - 1 - n, p);
    out[n] = 0;
    int st = pclose(p);
    *ret_out = out;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* lade-info --model file: exit status want, and each of the NULL-ended
 * lines present as a whole line of its output. */
static void expect(const char *file, int want, ...)
{
    char cmd[1024], *out;
    snprintf(cmd, sizeof(cmd), "'%s' --model '%s'", LADE_INFO_PATH, file);
    int st = run(cmd, &out);
    if (st != want)
        fail_msg("%s: exit %d, want %d; output:\n%s", file, st, want, out);
    va_list ap;
    va_start(ap, want);
    for (const char *line; (line = va_arg(ap, const char *));) {
        char *pat = malloc(strlen(line) + 3);
        sprintf(pat, "\n%s\n", line);
        if (!strstr(out, pat) && strncmp(out, pat + 1, strlen(pat + 1)) != 0)
            fail_msg("%s: no line '%s' in:\n%s", file, line, out);
        free(pat);
    }
    va_end(ap);
    free(out);
}

static void test_stories260k(void **state)
{
    expect(LADE_MODELS_DIR "/stories260K.gguf", 0, "file: " LADE_MODELS_DIR "/stories260K.gguf",
           "architecture: llama", "layers: 5", "dim: 64", "heads: 8", "kv heads: 4", "head dim: 8",
           "ffn: 172", "n_ctx_train: 2048",
           "rope: normal (adjacent pairs), theta 10000, 8 dims a head", "rope_freqs: no",
           "tied embeddings: no", "qkv bias: no", "qk norm: no", "tensors: 48: f32 48",
           "vocab: 512 tokens, llama (SentencePiece)", "pre-tokenizer: -", "add_bos: yes",
           "special ids: bos 1, eos 2, eot -1, eom -1, pad -1, unk 0", "end of generation: 2",
           "chat template: none", "chat format: none (chat requests are refused)", NULL);
}

static void test_arch_fixtures(void **state)
{
    expect(ARCH_DIR "llama-gqa-q4_k.gguf", 0, "architecture: llama", "heads: 4", "kv heads: 2",
           "head dim: 128", "rope: normal (adjacent pairs), theta 10000, 128 dims a head",
           "rope scaling: linear, factor 4, attn_factor 1, cos/sin scale 1", "rope_freqs: yes",
           "tied embeddings: no", "tensors: 22: f32 6 q4_K 16", NULL);
    expect(ARCH_DIR "llama-yarn-bf16.gguf", 0, "head dim: 64",
           "rope scaling: yarn, factor 4, original context 128, ext_factor 1, beta_fast 32, "
           "beta_slow 1, attn_factor 1, cos/sin scale 1.13863",
           "tied embeddings: yes", "tensors: 20: f32 5 bf16 15", NULL);
    expect(ARCH_DIR "qwen2-q5_1.gguf", 0, "architecture: qwen2",
           "rope: neox (pairs i, i + dims/2), theta 10000, 64 dims a head",
           "rope scaling: linear, factor 1 (none), attn_factor 1, cos/sin scale 1",
           "tied embeddings: yes", "qkv bias: yes", "qk norm: no", "tensors: 26: f32 11 q5_1 15",
           NULL);
    expect(ARCH_DIR "qwen3-q6_k.gguf", 0, "architecture: qwen3", "head dim: 128", "qkv bias: no",
           "qk norm: yes", "tensors: 25: f32 9 q6_K 16", NULL);
}

/* A vocabulary without weights: said, and its tokenizer still printed. */
static void test_vocab_only(void **state)
{
    expect(LADE_BINARY_DIR "/tests/llama/bpe-fixtures/llama3_1.gguf", 1,
           "model: lade cannot run it: missing metadata key 'llama.context_length'", "tensors: 0",
           "vocab: 128256 tokens, gpt2 (byte-level BPE)", "pre-tokenizer: llama-bpe",
           "end of generation: 128009 128001", NULL);
}

/* A lade-synth model with tmpl as its chat template, in a temporary
 * folder: its path in file. */
static void synth_with_template(const char *tmpl, char *dir, char *file, size_t cap)
{
    char path[512], cmd[2048], *out;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.jinja", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(tmpl, f);
    assert_int_equal(fclose(f), 0);
    snprintf(file, cap, "%s/m.gguf", dir);
    snprintf(cmd, sizeof(cmd), "'%s' --arch qwen2 --tied --chat-template '%s' test q8_0 '%s' 2>&1",
             LADE_SYNTH_PATH, path, file);
    if (run(cmd, &out) != 0)
        fail_msg("lade-synth: %s", out);
    free(out);
    unlink(path);
}

static void cleanup(const char *dir, const char *file)
{
    unlink(file);
    rmdir(dir);
}

static const char *reference_template(json_t *root, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(root, "templates"), i, t)
    {
        if (!strcmp(json_string_value(json_object_get(t, "name")), name))
            return json_string_value(json_object_get(t, "template"));
    }
    fail_msg("no template '%s' in jinja-templates.json", name);
    return NULL;
}

/* Qwen3's and Llama 3.1's own templates are rendered by lade's Jinja; the
 * sample is the reference rendering of a system and a user message. */
static void test_chat_jinja(void **state)
{
    json_error_t je;
    json_t *root = json_load_file(LADE_SOURCE_DIR "/tests/llama/data/jinja-templates.json", 0, &je);
    char dir[] = "/tmp/lade-info-XXXXXX", file[512];
    if (!root)
        fail_msg("jinja-templates.json: %s", je.text);
    synth_with_template(reference_template(root, "qwen3"), dir, file, sizeof(file));
    expect(file, 0, "chat template: present, 4116 bytes, rendered by lade's Jinja",
           "chat format: jinja (the model's template)",
           "chat sample: \"<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n"
           "<|im_start|>user\\nHello!<|im_end|>\\n<|im_start|>assistant\\n\"",
           NULL);
    cleanup(dir, file);
    strcpy(dir, "/tmp/lade-info-XXXXXX");
    /* the synth vocabulary's BOS is <s>, which the template's bos_token prints */
    synth_with_template(reference_template(root, "llama3.1-tools"), dir, file, sizeof(file));
    expect(file, 0, "chat format: jinja (the model's template)",
           "chat sample: \"<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge "
           "Date: December 2023\\nToday Date: 26 Jul 2024\\n\\nYou are a helpful "
           "assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\\n\\nHello!<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\\n\\n\" after BOS",
           NULL);
    cleanup(dir, file);
    json_decref(root);
}

/* A template lade's Jinja cannot render: the family's fallback, and why;
 * of no known family: chat refused. */
static void test_chat_fallback(void **state)
{
    char dir[] = "/tmp/lade-info-XXXXXX", file[512];
    synth_with_template("{% for m in messages %}<|im_start|>{{ m.content | nosuch }}{% endfor %}",
                        dir, file, sizeof(file));
    expect(file, 0, "chat template: present, 71 bytes, lade's Jinja interpreter cannot render it",
           "chat format: chatml",
           "chat sample: \"<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n"
           "<|im_start|>user\\nHello!<|im_end|>\\n<|im_start|>assistant\\n\"",
           NULL);
    cleanup(dir, file);
    strcpy(dir, "/tmp/lade-info-XXXXXX");
    synth_with_template("{% if %}", dir, file, sizeof(file));
    expect(file, 0, "chat format: none (chat requests are refused)", NULL);
    cleanup(dir, file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260k),   cmocka_unit_test(test_arch_fixtures),
        cmocka_unit_test(test_vocab_only),    cmocka_unit_test(test_chat_jinja),
        cmocka_unit_test(test_chat_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
