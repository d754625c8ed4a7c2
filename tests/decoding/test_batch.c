/* The batch: sequences decoded on their own threads and stepped together
 * give what each gives alone, whatever joins or leaves when; the prefix
 * cache keeps what a sequence shares with its last prompt. The model
 * behind it is one toy per sequence (each checking its seam's contracts),
 * and the multi-sequence step over them checks its own: each sequence at
 * most once a step, max_rows rows at most, every part answered. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "toy.h"

#define N_SEQ 8
#define MAX_ROWS 64
#define EOS_POS 70 /* EOS is the argmax from here: some sequences end early, some not */

struct multi {
    struct toy *t[N_SEQ];
    uint32_t steps, max_parts, bad;
    uint64_t rows;
};

static int mm_step(void *ctx, const struct dec_part *parts, uint32_t n)
{
    struct multi *m = ctx;
    uint32_t rows = 0;
    bool seen[N_SEQ] = { false };
    for (uint32_t i = 0; i < n; i++) {
        if (parts[i].seq >= N_SEQ || seen[parts[i].seq])
            m->bad++;
        seen[parts[i].seq % N_SEQ] = true;
        rows += parts[i].n;
    }
    if (rows > MAX_ROWS)
        m->bad++;
    m->steps++;
    m->rows += rows;
    m->max_parts = n > m->max_parts ? n : m->max_parts;
    for (uint32_t i = 0; i < n; i++) {
        struct toy *t = m->t[parts[i].seq % N_SEQ];
        int err = t->model.step(t, parts[i].rows, parts[i].n, parts[i].ret_argmax,
                                parts[i].ret_logits);
        if (err)
            return err;
    }
    return 0;
}

static int mm_commit(void *ctx, uint32_t seq, const uint32_t *rows, uint32_t n)
{
    struct toy *t = ((struct multi *)ctx)->t[seq];
    return t->model.commit(t, rows, n);
}

static int mm_rewind(void *ctx, uint32_t seq, uint32_t n_keep)
{
    struct toy *t = ((struct multi *)ctx)->t[seq];
    return t->model.rewind(t, n_keep);
}

static uint32_t mm_n_past(void *ctx, uint32_t seq)
{
    return ((struct multi *)ctx)->t[seq]->n_past;
}

static const int32_t *mm_tokens(void *ctx, uint32_t seq)
{
    return ((struct multi *)ctx)->t[seq]->seq;
}

static int mm_set_draw(void *ctx, uint32_t seq, const struct dec_draw_params *d)
{
    struct toy *t = ((struct multi *)ctx)->t[seq];
    return t->model.set_draw(t, d);
}

static uint32_t mm_copy_prefix(void *ctx, uint32_t dst, uint32_t src, uint32_t n)
{
    struct toy *d = ((struct multi *)ctx)->t[dst], *s = ((struct multi *)ctx)->t[src];
    if (n > s->n_past)
        return 0;
    memcpy(d->seq, s->seq, n * sizeof(*d->seq));
    d->n_past = n;
    d->n_rows = 0;
    d->can_commit = false;
    return n;
}

static struct multi *multi_new(struct dec_multi *ret, bool draws)
{
    struct multi *m = calloc(1, sizeof(*m));
    struct toy_cfg cfg = toy_cfg_default();
    cfg.max_rows = MAX_ROWS;
    cfg.draws = draws;
    cfg.eos_pos = EOS_POS;
    for (int i = 0; i < N_SEQ; i++)
        m->t[i] = toy_new(&cfg);
    *ret = (struct dec_multi){ .ctx = m,
                               .n_vocab = cfg.n_vocab,
                               .n_ctx = cfg.n_ctx,
                               .max_rows = MAX_ROWS,
                               .n_seq = N_SEQ,
                               .bos = -1,
                               .eos = cfg.eos,
                               .step = mm_step,
                               .commit = mm_commit,
                               .rewind = mm_rewind,
                               .n_past = mm_n_past,
                               .tokens = mm_tokens,
                               .copy_prefix = mm_copy_prefix,
                               .set_draw = draws ? mm_set_draw : NULL };
    return m;
}

static void multi_free(struct multi *m)
{
    for (int i = 0; i < N_SEQ; i++) {
        assert_int_equal(m->t[i]->violations, 0);
        toy_free(m->t[i]);
    }
    assert_int_equal(m->bad, 0);
    free(m);
}

/* One sequence's job on its thread */
struct job {
    struct dec_batch *b;
    uint32_t seq;
    const struct dec_caps *caps;
    struct dec_params p;
    int32_t prompt[64];
    uint32_t n_prompt;
    uint32_t delay_us; /* before joining: sequences join at different times */
    pthread_barrier_t *together; /* delay 0: joined before any of these steps */
    struct toy_sink sink;
    struct dec_result res;
    int err;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    struct dec_model dm;
    struct dec_session *s = NULL;
    if (j->delay_us) {
        struct timespec ts = { 0, (long)j->delay_us * 1000 };
        nanosleep(&ts, NULL);
    }
    dec_batch_model(j->b, j->seq, 16, &dm);
    j->err = dec_session_new(&dm, j->caps, &s);
    if (!j->err)
        j->err = dec_batch_join(j->b, j->seq);
    if (j->together)
        pthread_barrier_wait(j->together);
    if (!j->err) {
        j->sink = (struct toy_sink){ 0 };
        j->err = dec_generate(s, j->prompt, j->n_prompt, &j->p, NULL, toy_sink_emit, &j->sink,
                              &j->res);
        dec_batch_leave(j->b, j->seq);
    }
    dec_session_free(s);
    return NULL;
}

/* The same job alone, on a fresh toy of its own. */
static void alone(const struct job *j, bool draws, struct toy_sink *sink, struct dec_result *res)
{
    struct toy_cfg cfg = toy_cfg_default();
    cfg.max_rows = MAX_ROWS;
    cfg.draws = draws;
    cfg.eos_pos = EOS_POS;
    struct toy *t = toy_new(&cfg);
    struct dec_session *s = NULL;
    assert_int_equal(dec_session_new(&t->model, j->caps, &s), 0);
    assert_int_equal(toy_run(t, s, j->prompt, j->n_prompt, &j->p, false, sink, res), 0);
    dec_session_free(s);
    toy_free(t);
}

static void run_jobs(struct job *jobs, uint32_t n)
{
    pthread_t th[N_SEQ];
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, job_main, &jobs[i]), 0);
    for (uint32_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

static void check_batched(bool draws, uint64_t seed)
{
    struct dec_multi mm;
    struct multi *m = multi_new(&mm, draws);
    struct dec_batch *b = NULL;
    assert_int_equal(dec_batch_new(&mm, &b), 0);
    struct dec_caps caps = dec_caps_default();
    static struct job jobs[N_SEQ];
    uint32_t finishes[DEC_FINISH_ERROR + 1] = { 0 };
    for (uint32_t n = 1; n <= N_SEQ; n++) {
        for (uint32_t i = 0; i < n; i++) {
            struct job *j = &jobs[i];
            *j = (struct job){ .b = b, .seq = i, .caps = &caps, .p = dec_params_default() };
            uint64_t s = seed * 977 + n * 31 + i;
            j->n_prompt = 8 + (uint32_t)(s % 40);
            toy_prompt(m->t[i], s, j->n_prompt, j->prompt);
            j->p.max_tokens = 20 + (uint32_t)(s * 7 % 60);
            j->p.lookahead = (s % 3) != 0;
            j->p.n = 3 + (uint32_t)(s % 3);
            j->p.w = 2 + (uint32_t)(s % 4);
            j->p.g = 2 + (uint32_t)(s % 3);
            j->p.adaptive = false;
            j->p.seed = s;
            if (draws && s % 2) {
                j->p.temperature = 0.7f + 0.1f * (float)(s % 3);
                j->p.top_k = (s % 4) ? 0 : 20;
            }
            /* The first two join together (so steps are shared for sure),
             * the others at odd times */
            j->delay_us = i < 2 || s % 2 ? 0 : (uint32_t)(s * 131 % 500);
        }
        pthread_barrier_t together;
        uint32_t n_zero = 0;
        for (uint32_t i = 0; i < n; i++)
            n_zero += jobs[i].delay_us == 0;
        pthread_barrier_init(&together, NULL, n_zero);
        for (uint32_t i = 0; i < n; i++)
            jobs[i].together = jobs[i].delay_us == 0 ? &together : NULL;
        run_jobs(jobs, n);
        pthread_barrier_destroy(&together);
        for (uint32_t i = 0; i < n; i++) {
            struct toy_sink want = { 0 };
            struct dec_result wres;
            assert_int_equal(jobs[i].err, 0);
            alone(&jobs[i], draws, &want, &wres);
            assert_int_equal(jobs[i].res.finish, wres.finish);
            assert_int_equal(jobs[i].sink.n, want.n);
            assert_memory_equal(jobs[i].sink.tok, want.tok, want.n * sizeof(int32_t));
            finishes[jobs[i].res.finish]++;
        }
    }
    /* Both ends happened, at different times */
    assert_true(finishes[DEC_FINISH_EOS] > 0);
    assert_true(finishes[DEC_FINISH_LENGTH] > 0);
    struct dec_batch_stats st;
    dec_batch_get_stats(b, &st);
    assert_int_equal(st.joined, 0);
    /* Steps were shared: fewer model steps than parts */
    assert_true(st.steps < st.parts);
    assert_true(m->max_parts > 1);
    dec_batch_free(b);
    multi_free(m);
}

static void test_batched_greedy_equals_alone(void **state)
{
    (void)state;
    check_batched(false, 1);
    check_batched(false, 2);
}

static void test_batched_sampled_equals_alone(void **state)
{
    (void)state;
    check_batched(true, 3);
}

/* A second prompt that begins with the first's prompt and output (the next
 * turn of a chat) prefills only what is new, and gives what a cold start
 * gives. */
static void test_prefix_reuse(void **state)
{
    (void)state;
    struct dec_multi mm;
    struct multi *m = multi_new(&mm, false);
    struct dec_batch *b = NULL;
    assert_int_equal(dec_batch_new(&mm, &b), 0);
    struct dec_caps caps = dec_caps_default();
    static struct job j;
    j = (struct job){ .b = b, .seq = 2, .caps = &caps, .p = dec_params_default() };
    j.n_prompt = 20;
    toy_prompt(m->t[2], 5, j.n_prompt, j.prompt);
    j.p.max_tokens = 12;
    j.p.w = 4;
    j.p.g = 4;
    job_main(&j);
    if (j.err)
        print_message("%s\n", j.res.error);
    assert_int_equal(j.err, 0);
    assert_int_equal(j.res.stats.reused_tokens, 0);
    assert_int_equal(j.res.stats.prefill_tokens, 20);
    /* turn 2: prompt + output + 3 new tokens */
    uint32_t n1 = j.n_prompt;
    memcpy(j.prompt + n1, j.sink.tok, j.sink.n * sizeof(int32_t));
    uint32_t n2 = n1 + j.sink.n;
    j.prompt[n2] = 7;
    j.prompt[n2 + 1] = 9;
    j.prompt[n2 + 2] = 11;
    j.n_prompt = n2 + 3;
    job_main(&j);
    assert_int_equal(j.err, 0);
    /* The cache holds the prompt and every output token but the last */
    assert_int_equal(j.res.stats.reused_tokens, n2 - 1);
    assert_int_equal(j.res.stats.prefill_tokens, 4);
    struct toy_sink want = { 0 };
    struct dec_result wres;
    alone(&j, false, &want, &wres);
    assert_int_equal(j.sink.n, want.n);
    assert_memory_equal(j.sink.tok, want.tok, want.n * sizeof(int32_t));
    /* The same prompt again: everything but its last token is kept */
    job_main(&j);
    assert_int_equal(j.res.stats.reused_tokens, j.n_prompt - 1);
    assert_int_equal(j.sink.n, want.n);
    assert_memory_equal(j.sink.tok, want.tok, want.n * sizeof(int32_t));
    dec_batch_free(b);
    multi_free(m);
}

/* Another sequence's prefix (a system prompt one client sent) serves a
 * new sequence: copied, then kept, and the output is a cold start's. */
static void test_prefix_shared_across_sequences(void **state)
{
    (void)state;
    struct dec_multi mm;
    struct multi *m = multi_new(&mm, false);
    struct dec_batch *b = NULL;
    assert_int_equal(dec_batch_new(&mm, &b), 0);
    struct dec_caps caps = dec_caps_default();
    static struct job a, c;
    a = (struct job){ .b = b, .seq = 0, .caps = &caps, .p = dec_params_default() };
    a.n_prompt = 24;
    toy_prompt(m->t[0], 9, a.n_prompt, a.prompt);
    a.p.max_tokens = 10;
    a.p.w = 4;
    a.p.g = 4;
    job_main(&a);
    assert_int_equal(a.err, 0);
    c = a;
    c.seq = 5;
    c.prompt[24] = 3;
    c.prompt[25] = 4;
    c.n_prompt = 26;
    uint32_t held = dec_batch_share(b, 5, c.prompt, c.n_prompt);
    assert_true(held >= 24);
    job_main(&c);
    assert_int_equal(c.err, 0);
    assert_int_equal(c.res.stats.reused_tokens, held);
    struct toy_sink want = { 0 };
    struct dec_result wres;
    alone(&c, false, &want, &wres);
    assert_int_equal(c.sink.n, want.n);
    assert_memory_equal(c.sink.tok, want.tok, want.n * sizeof(int32_t));
    struct dec_batch_stats st;
    dec_batch_get_stats(b, &st);
    assert_int_equal(st.copies, 1);
    assert_int_equal(st.copied_tokens, held);
    /* Its own prefix is as long: nothing copied */
    assert_int_equal(dec_batch_share(b, 5, c.prompt, c.n_prompt), c.n_prompt - 1);
    dec_batch_get_stats(b, &st);
    assert_int_equal(st.copies, 1);
    dec_batch_free(b);
    multi_free(m);
}

static void test_join_twice_and_bad_args(void **state)
{
    (void)state;
    struct dec_multi mm;
    struct multi *m = multi_new(&mm, false);
    struct dec_batch *b = NULL;
    assert_int_equal(dec_batch_new(NULL, &b), -EINVAL);
    assert_int_equal(dec_batch_new(&mm, &b), 0);
    assert_int_equal(dec_batch_join(b, 0), 0);
    assert_int_equal(dec_batch_join(b, 0), -EBUSY);
    assert_int_equal(dec_batch_join(b, N_SEQ), -EINVAL);
    struct dec_model dm;
    dec_batch_model(b, 1, 0, &dm);
    struct dec_row r = { 1, -1, DEC_WANT_ARGMAX, 0 };
    int32_t am;
    assert_int_equal(dm.step(dm.ctx, &r, 1, &am, NULL), -EINVAL); /* 1 not joined */
    dec_batch_leave(b, 0);
    dec_batch_leave(b, 0); /* twice: nothing */
    /* A session serves any sequence of the batch in turn, nothing else */
    struct dec_caps caps = dec_caps_default();
    struct dec_model dm2, other;
    struct dec_session *s = NULL;
    dec_batch_model(b, 2, 0, &dm2);
    assert_int_equal(dec_session_new(&dm, &caps, &s), 0);
    assert_int_equal(dec_session_use(s, &dm2), 0);
    other = dm2;
    other.n_vocab++;
    assert_int_equal(dec_session_use(s, &other), -EINVAL);
    assert_int_equal(dec_session_use(s, NULL), -EINVAL);
    dec_session_free(s);
    dec_batch_free(b);
    multi_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_greedy_equals_alone),
        cmocka_unit_test(test_batched_sampled_equals_alone),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_prefix_shared_across_sequences),
        cmocka_unit_test(test_join_twice_and_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
