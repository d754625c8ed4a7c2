/* Several sequences in shared steps on the GPU model (issue #21): each
 * sequence's output, run by the batch among 1 to 8 others admitted at
 * different times, equals its output alone on a one-sequence model, for
 * greedy lookahead, plain greedy and seeded sampling (drawn on the GPU,
 * each sequence with its own temperature, top-k/top-p/min-p and penalty),
 * on stories260K with the shared story prompts (a built-in handful
 * without ../shared). A cancelled sequence leaves the others exact, and a
 * chat's next turn reuses the cached prefix and still gives a cold start's
 * tokens. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "llama/llm.h"
#include "support_prompts.h"
#include "tools/tuning-env.h"

#define STORIES LADE_MODELS_DIR "/stories260K.gguf"
#define PROMPTS LADE_SHARED_DIR "/prompts/stories.jsonl"
#define N_SEQ 8
#define MAX_OUT 200
#define MAX_PROMPT 512

static const char *const builtin[] = { "Once upon a time", "Tom and Sue", "Lily wanted to",
                                       "One day, a little dog", "The sun was" };

struct job {
    struct dec_batch *b;
    uint32_t seq;
    struct dec_session *s;
    struct dec_params p;
    int32_t prompt[MAX_PROMPT];
    uint32_t n_prompt;
    uint32_t delay_ms;
    uint32_t cancel_after; /* emits, 0: never */
    int32_t out[MAX_OUT];
    uint32_t n_out, calls;
    struct dec_result res;
    int err;
};

static int emit(void *user, const int32_t *t, uint32_t n)
{
    struct job *j = user;
    for (uint32_t i = 0; i < n && j->n_out < MAX_OUT; i++)
        j->out[j->n_out++] = t[i];
    return j->cancel_after && ++j->calls >= j->cancel_after;
}

static void check_ok(const struct job *j)
{
    if (j->err)
        fail_msg("sequence %u: %d (%s)", j->seq, j->err, j->res.error);
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    if (j->delay_ms) {
        struct timespec ts = { 0, (long)j->delay_ms * 1000000L };
        nanosleep(&ts, NULL);
    }
    j->n_out = j->calls = 0;
    j->err = dec_batch_join(j->b, j->seq);
    if (!j->err) {
        j->err = dec_generate(j->s, j->prompt, j->n_prompt, &j->p, NULL, emit, j, &j->res);
        dec_batch_leave(j->b, j->seq);
    }
    return NULL;
}

struct fixture {
    struct llm_model *one, *many;
    struct dec_model dm_one;
    struct dec_session *s_one;
    struct dec_batch *b;
    struct dec_model dm[N_SEQ]; /* the sessions hold these */
    struct dec_session *s[N_SEQ];
    struct job jobs[N_SEQ];
    char **texts;
    size_t n_texts;
};

static struct llm_model *load(uint32_t n_seq)
{
    char err[512];
    struct llm_model *m;
    struct llm_model_opts o = { .path = STORIES,
                                .device = getenv("LADE_DEVICE"),
                                .n_ctx = 512,
                                .max_rows = 64,
                                .n_seq = n_seq };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        llm_model_load(&o, &m, err, sizeof(err)))
        fail_msg("%s", err);
    return m;
}

static char **load_prompts(size_t *ret_n)
{
    char **out = prompts_load(PROMPTS, 1000, ret_n);
    if (out)
        return out;
    fprintf(stderr, "%s not found (../shared absent): the built-in prompts\n", PROMPTS);
    out = calloc(5, sizeof(*out));
    for (size_t n = 0; n < 5; n++)
        out[n] = strdup(builtin[n]);
    *ret_n = 5;
    return out;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->one = load(1);
    f->many = load(N_SEQ);
    llm_model_dec(f->one, &f->dm_one);
    struct dec_caps caps = dec_caps_default();
    assert_int_equal(dec_session_new(&f->dm_one, &caps, &f->s_one), 0);
    struct dec_multi mm;
    llm_model_multi(f->many, &mm);
    assert_int_equal(mm.n_seq, N_SEQ);
    assert_int_equal(dec_batch_new(&mm, &f->b), 0);
    for (uint32_t i = 0; i < N_SEQ; i++) {
        dec_batch_model(f->b, i, 16, &f->dm[i]);
        assert_int_equal(dec_session_new(&f->dm[i], &caps, &f->s[i]), 0);
    }
    f->texts = load_prompts(&f->n_texts);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (uint32_t i = 0; i < N_SEQ; i++)
        dec_session_free(f->s[i]);
    dec_batch_free(f->b);
    dec_session_free(f->s_one);
    llm_model_free(f->one);
    llm_model_free(f->many);
    prompts_free(f->texts, f->n_texts);
    free(f);
    return 0;
}

static void encode(struct fixture *f, const char *text, struct job *j)
{
    size_t n;
    assert_int_equal(llm_tok_encode(llm_model_tok(f->one), text, strlen(text), LLM_TOK_ADD_BOS,
                                    j->prompt, MAX_PROMPT, &n),
                     0);
    j->n_prompt = (uint32_t)n;
}

/* The job alone, on the one-sequence model. */
static void alone(struct fixture *f, const struct job *j, int32_t *out, uint32_t *n_out)
{
    struct job a = *j;
    a.n_out = a.calls = 0;
    assert_int_equal(dec_generate(f->s_one, a.prompt, a.n_prompt, &a.p, NULL, emit, &a, &a.res), 0);
    memcpy(out, a.out, a.n_out * sizeof(*out));
    *n_out = a.n_out;
}

static void run_round(struct fixture *f, uint32_t n, uint64_t round)
{
    pthread_t th[N_SEQ];
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, job_main, &f->jobs[i]), 0);
    for (uint32_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (uint32_t i = 0; i < n; i++) {
        struct job *j = &f->jobs[i];
        int32_t want[MAX_OUT];
        uint32_t n_want;
        check_ok(j);
        if (j->cancel_after) {
            assert_int_equal(j->res.finish, DEC_FINISH_CANCELLED);
            continue;
        }
        alone(f, j, want, &n_want);
        uint32_t d = 0;
        while (d < j->n_out && d < n_want && j->out[d] == want[d])
            d++;
        if (j->n_out != n_want || d != n_want)
            fail_msg("round %llu, sequence %u of %u (lookahead %d, temperature %.2f): %u tokens "
                     "batched, %u alone, first difference at %u",
                     (unsigned long long)round, i, n, j->p.lookahead, j->p.temperature, j->n_out,
                     n_want, d);
    }
}

static void test_batched_equals_alone(void **state)
{
    struct fixture *f = *state;
    uint64_t rng = 12345;
    uint32_t rounds = 0, seqs = 0, finishes[DEC_FINISH_ERROR + 1] = { 0 }, plain_steps = 0,
             la_steps = 0;
    const uint32_t sizes[] = { 1, 2, 3, 4, 8 };
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        uint32_t n = sizes[si];
        for (uint32_t i = 0; i < n; i++) {
            struct job *j = &f->jobs[i];
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t r = (uint32_t)(rng >> 33);
            *j = (struct job){ .b = f->b, .seq = i, .s = f->s[i], .p = dec_params_default() };
            encode(f, f->texts[(rounds * 7 + i) % f->n_texts], j);
            j->p.max_tokens = 40 + r % 80;
            j->p.lookahead = r % 4 != 0;
            j->p.n = 3 + r % 3;
            j->p.w = 1 + r % 4;
            j->p.g = 1 + r % 4;
            j->p.adaptive = false;
            j->p.seed = r;
            if (r % 3 == 1) {
                /* Each its own settings: they share steps all the same */
                j->p.temperature = 0.6f + 0.1f * (float)(r % 5);
                j->p.top_p = r % 2 ? 0.9f : 1.0f;
                j->p.top_k = r % 7 == 0 ? 20 : 0;
                j->p.min_p = r % 11 == 0 ? 0.05f : 0.0f;
                j->p.repeat_penalty = r % 4 == 1 ? 1.1f : 1.0f;
            }
            j->delay_ms = r % 5 == 0 ? r % 40 : 0;
            seqs++;
        }
        if (n == 8) {
            /* One reaches the context's end while the others go on: a
             * prompt of most of the 512 positions */
            struct job *j = &f->jobs[n - 1];
            uint32_t k = j->n_prompt;
            for (uint32_t t = k; t < 480; t++)
                j->prompt[t] = j->prompt[1 + (t - 1) % (k - 1)];
            j->n_prompt = 480;
            j->p.max_tokens = 100;
        }
        run_round(f, n, rounds++);
        for (uint32_t i = 0; i < n; i++) {
            finishes[f->jobs[i].res.finish]++;
            plain_steps += f->jobs[i].res.stats.plain_steps;
            la_steps += f->jobs[i].res.stats.lookahead_steps;
        }
    }
    struct dec_batch_stats st;
    dec_batch_get_stats(f->b, &st);
    fprintf(stderr,
            "%u sequences in %u rounds equal alone (finish: %u length, %u eos, %u context; %u "
            "lookahead and %u plain steps) in %llu model steps carrying %llu sequences' steps\n",
            seqs, rounds, finishes[DEC_FINISH_LENGTH], finishes[DEC_FINISH_EOS],
            finishes[DEC_FINISH_CONTEXT], la_steps, plain_steps, (unsigned long long)st.steps,
            (unsigned long long)st.parts);
    assert_int_equal(finishes[DEC_FINISH_CONTEXT], 1);
    assert_true(st.parts > st.steps);
    assert_int_equal(st.joined, 0); /* every sequence left */
}

/* One sequence cancelled midway, the others go on exactly. */
static void test_cancel_midway(void **state)
{
    struct fixture *f = *state;
    for (uint32_t i = 0; i < 4; i++) {
        struct job *j = &f->jobs[i];
        *j = (struct job){ .b = f->b, .seq = i, .s = f->s[i], .p = dec_params_default() };
        encode(f, f->texts[i % f->n_texts], j);
        j->p.max_tokens = 60;
        j->p.n = 4;
        j->p.w = 3;
        j->p.g = 3;
        j->cancel_after = i == 1 ? 3 : 0;
    }
    run_round(f, 4, 100);
}

/* The next turn of a chat: the prompt is the last one, its output and new
 * text; the cache keeps what they share. */
static void test_next_turn_reuses(void **state)
{
    struct fixture *f = *state;
    struct job *j = &f->jobs[0];
    *j = (struct job){ .b = f->b, .seq = 3, .s = f->s[3], .p = dec_params_default() };
    encode(f, f->texts[0], j);
    j->p.max_tokens = 30;
    j->p.w = 4;
    j->p.g = 4;
    job_main(j);
    check_ok(j);
    uint32_t n1 = j->n_prompt + j->n_out;
    assert_true(n1 + 8 < MAX_PROMPT);
    memcpy(j->prompt + j->n_prompt, j->out, j->n_out * sizeof(int32_t));
    struct job extra;
    encode(f, " Then they went home.", &extra);
    memcpy(j->prompt + n1, extra.prompt + 1, (extra.n_prompt - 1) * sizeof(int32_t));
    j->n_prompt = n1 + extra.n_prompt - 1;
    job_main(j);
    check_ok(j);
    assert_int_equal(j->res.stats.reused_tokens, n1 - 1);
    assert_int_equal(j->res.stats.prefill_tokens, j->n_prompt - (n1 - 1));
    int32_t want[MAX_OUT];
    uint32_t n_want;
    alone(f, j, want, &n_want);
    assert_int_equal(j->n_out, n_want);
    assert_memory_equal(j->out, want, n_want * sizeof(int32_t));
}

/* A prompt another sequence holds (a system prompt another client sent)
 * is copied into a new sequence's region, also while that sequence is
 * still generating, and both give their alone tokens. */
static void test_prefix_copied_from_running(void **state)
{
    struct fixture *f = *state;
    struct job *a = &f->jobs[0], *c = &f->jobs[1];
    *a = (struct job){ .b = f->b, .seq = 4, .s = f->s[4], .p = dec_params_default() };
    encode(f, "Once upon a time, there was a little girl named Lily. She loved to play", a);
    a->p.max_tokens = 150;
    a->p.w = 4;
    a->p.g = 4;
    *c = *a;
    c->seq = 6;
    c->s = f->s[6];
    c->p.max_tokens = 40;
    struct job extra;
    encode(f, " with her red ball.", &extra);
    memcpy(c->prompt + a->n_prompt, extra.prompt + 1, (extra.n_prompt - 1) * sizeof(int32_t));
    c->n_prompt = a->n_prompt + extra.n_prompt - 1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, job_main, a), 0);
    /* a is past its prompt (its first tokens are out) before c copies */
    for (int i = 0; i < 500 && __atomic_load_n(&a->n_out, __ATOMIC_ACQUIRE) < 5; i++) {
        struct timespec ts = { 0, 10000000L };
        nanosleep(&ts, NULL);
    }
    struct dec_batch_stats st0, st1;
    dec_batch_get_stats(f->b, &st0);
    uint32_t held = dec_batch_share(f->b, c->seq, c->prompt, c->n_prompt);
    dec_batch_get_stats(f->b, &st1);
    job_main(c);
    pthread_join(th, NULL);
    check_ok(a);
    check_ok(c);
    fprintf(stderr, "copied %u of %u prompt tokens from a running sequence\n", held, c->n_prompt);
    assert_true(held >= a->n_prompt);
    assert_int_equal(st1.copies, st0.copies + 1);
    assert_int_equal(c->res.stats.reused_tokens, held);
    for (int k = 0; k < 2; k++) {
        struct job *j = k ? c : a;
        int32_t want[MAX_OUT];
        uint32_t n_want;
        alone(f, j, want, &n_want);
        assert_int_equal(j->n_out, n_want);
        assert_memory_equal(j->out, want, n_want * sizeof(int32_t));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_equals_alone),
        cmocka_unit_test(test_cancel_midway),
        cmocka_unit_test(test_next_turn_reuses),
        cmocka_unit_test(test_prefix_copied_from_running),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
