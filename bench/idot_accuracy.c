/* lade-idot-accuracy: the GPU model (its tuning from LADE_* variables,
 * LADE_IDOT=1 for the integer path) against the f32 CPU reference
 * (llama/ref.c) on the same quantised weights, over a prompt set: per
 * prompt, whether greedy output is the same for N tokens, and the logits'
 * error. Both models are fed the reference's greedy tokens (teacher
 * forcing), so "the same greedy output" is "the GPU's argmax equals the
 * reference's token at every one of the N positions", and the logits are
 * compared at the same positions. JSON to OUT (docs/kernels.md, "Integer
 * dot products"; bench/idot.sh runs it).
 *
 *   lade-idot-accuracy MODEL.gguf PROMPTS.jsonl N_PROMPTS N_TOKENS OUT.json */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "decoding/dec.h"
#include "llama/llm.h"
#include "llama/ref.h"
#include "llama/tokenizer.h"
#include "tools/tuning-env.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct errs {
    double max_abs, max_rel, sq, n; /* rel: to the largest |logit| of the row */
};

static void compare(const float *g, const float *c, uint32_t V, struct errs *e)
{
    double amax = 0, dmax = 0;
    for (uint32_t i = 0; i < V; i++) {
        double d = fabs((double)g[i] - c[i]);
        dmax = d > dmax ? d : dmax;
        amax = fabs(c[i]) > amax ? fabs(c[i]) : amax;
        e->sq += d * d;
    }
    e->n += V;
    e->max_abs = dmax > e->max_abs ? dmax : e->max_abs;
    if (amax > 0 && dmax / amax > e->max_rel)
        e->max_rel = dmax / amax;
}

static void write_json(const char *path, const struct llm_model *m, const struct errs *all,
                       json_t *per, unsigned n, uint32_t ntok, unsigned equal, double seconds)
{
    json_t *out = json_pack("{s:s,s:b,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:O}", "description",
                            llm_model_desc(m), "idot", llm_model_tuning(m)->idot == LLM_SWITCH_ON,
                            "prompts", (int)n, "tokens", (int)ntok, "equal", (int)equal,
                            "logits_max_abs_err", all->max_abs, "logits_max_rel_err", all->max_rel,
                            "logits_rms_err", all->n ? sqrt(all->sq / all->n) : 0.0, "seconds",
                            seconds, "per_prompt", per);
    if (!out || json_dump_file(out, path, JSON_INDENT(2)))
        fprintf(stderr, "lade-idot-accuracy: cannot write '%s'\n", path);
    json_decref(out);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: lade-idot-accuracy MODEL.gguf PROMPTS.jsonl N_PROMPTS N_TOKENS "
                        "OUT.json\n");
        return 2;
    }
    size_t limit = strtoul(argv[3], NULL, 10);
    uint32_t ntok = (uint32_t)strtoul(argv[4], NULL, 10);
    char err[512];
    struct llm_model *m;
    struct llm_model_opts o = { .path = argv[1], .device = getenv("LADE_DEVICE"), .n_ctx = 1024 };
    if (lade_tuning_from_env(&o.tuning, err, sizeof(err)) ||
        llm_model_load(&o, &m, err, sizeof(err))) {
        fprintf(stderr, "lade-idot-accuracy: %s\n", err);
        return 1;
    }
    struct llm_ref *ref;
    if (llm_ref_new(llm_model_gguf(m), 1024, &ref, err, sizeof(err))) {
        fprintf(stderr, "lade-idot-accuracy: %s\n", err);
        return 1;
    }
    struct dec_model g, c;
    llm_model_dec(m, &g);
    llm_ref_dec_model(ref, &c);
    uint32_t V = g.n_vocab;
    float *lg = malloc((size_t)V * 4), *lc = malloc((size_t)V * 4);
    FILE *f = fopen(argv[2], "r");
    if (!f || !lg || !lc) {
        fprintf(stderr, "lade-idot-accuracy: cannot open '%s'\n", argv[2]);
        return 1;
    }
    json_t *per = json_array();
    struct errs all = { 0 };
    unsigned equal = 0, n = 0;
    double t0 = now();
    char *line = NULL;
    size_t cap = 0;
    while (n < limit && getline(&line, &cap, f) > 0) {
        json_t *jo = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(jo, "id"));
        const char *text = json_string_value(json_object_get(jo, "prompt"));
        if (!id || !text) {
            json_decref(jo);
            continue;
        }
        size_t len = strlen(text), nt = 0;
        int32_t *t = malloc((len + 2) * sizeof(*t));
        const struct llm_tok *tok = llm_model_tok(m);
        if (llm_tok_encode(tok, text, len, llm_tok_add_bos(tok) ? LLM_TOK_ADD_BOS : 0, t, len + 2,
                           &nt)) {
            fprintf(stderr, "lade-idot-accuracy: %s: tokenize failed\n", id);
            return 1;
        }
        if (nt + ntok > 1024)
            nt = 1024 - ntok;
        int32_t ag, ac;
        struct errs e = { 0 };
        int first = -1;
        if (g.rewind(g.ctx, 0) || c.rewind(c.ctx, 0) ||
            g.prefill(g.ctx, t, (uint32_t)nt, &ag, lg) ||
            c.prefill(c.ctx, t, (uint32_t)nt, &ac, lc))
            return fprintf(stderr, "lade-idot-accuracy: %s: prefill failed\n", id), 1;
        for (uint32_t k = 0; k < ntok; k++) {
            compare(lg, lc, V, &e);
            if (ag != ac && first < 0)
                first = (int)k;
            /* both go on with the reference's token */
            struct dec_row row = { ac, -1, DEC_WANT_LOGITS, 0 };
            uint32_t keep = 0;
            if (k + 1 == ntok)
                break;
            if (g.step(g.ctx, &row, 1, &ag, lg) || g.commit(g.ctx, &keep, 1) ||
                c.step(c.ctx, &row, 1, &ac, lc) || c.commit(c.ctx, &keep, 1))
                return fprintf(stderr, "lade-idot-accuracy: %s: step failed\n", id), 1;
        }
        equal += first < 0;
        n++;
        all.max_abs = e.max_abs > all.max_abs ? e.max_abs : all.max_abs;
        all.max_rel = e.max_rel > all.max_rel ? e.max_rel : all.max_rel;
        all.sq += e.sq;
        all.n += e.n;
        fprintf(stderr,
                "%s: %zu prompt tokens, %s (first differing token %d), logits max |err| %.4g (%.3g of max |logit|), rms %.4g\n",
                id, nt, first < 0 ? "equal" : "differs", first, e.max_abs, e.max_rel,
                sqrt(e.sq / e.n));
        json_array_append_new(per,
                              json_pack("{s:s,s:i,s:b,s:i,s:f,s:f,s:f}", "id", id, "prompt_tokens",
                                        (int)nt, "equal", first < 0, "first_diff", first,
                                        "logits_max_abs_err", e.max_abs, "logits_max_rel_err",
                                        e.max_rel, "logits_rms_err", sqrt(e.sq / e.n)));
        free(t);
        json_decref(jo);
        /* after every prompt, so that a run cut short leaves its figures */
        write_json(argv[5], m, &all, per, n, ntok, equal, now() - t0);
    }
    free(line);
    fclose(f);
    write_json(argv[5], m, &all, per, n, ntok, equal, now() - t0);
    printf("%s: greedy equal to the f32 CPU reference on %u of %u prompts x %u tokens; logits "
           "max |err| %.4g (%.3g of max |logit|), rms %.4g\n",
           argv[1], equal, n, ntok, all.max_abs, all.max_rel, all.n ? sqrt(all.sq / all.n) : 0.0);
    json_decref(per);
    free(lg);
    free(lc);
    llm_ref_free(ref);
    llm_model_free(m);
    return 0;
}
