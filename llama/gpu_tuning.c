/* Tuning of the GPU model (struct llm_tuning, llm.h): the knobs parsed
 * from text, and the device's defaults for the ones left at zero. The
 * measurements behind the defaults are in docs/kernels.md ("Matrix kernel",
 * "Attention", "Matrix units"). */
#include "llama/gpu_tuning.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const llm_tuning_keys[] = {
    "mm", "mm_wide", "mm_one",     "mm_xsh", "mm_splitk", "fuse", "coopmat",
    "cm", "att",     "step_cache", "draw",   "idot",      NULL,
};

static bool is_pow2(unsigned v)
{
    return v && !(v & (v - 1));
}

/* A whole decimal number in [lo, hi]. */
static bool parse_uint(const char *v, unsigned long lo, unsigned long hi, uint32_t *ret)
{
    char *end;
    if (!*v || *v == '-' || *v == '+')
        return false;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || n < lo || n > hi)
        return false;
    *ret = (uint32_t)n;
    return true;
}

/* The refusal of a value: "key='value': want ...". */
static int bad(char *reterr, size_t errlen, const char *key, const char *v, const char *want)
{
    snprintf(reterr, errlen, "%s='%.60s': want %s", key, v, want);
    return -EINVAL;
}

static int set_geom(struct llm_mm_geom *g, const char *key, const char *v, char *reterr,
                    size_t errlen)
{
    unsigned a, b, c, e;
    char extra;
    if (sscanf(v, "%u,%u,%u,%u%c", &a, &b, &c, &e, &extra) != 4 || a > 1024 || !is_pow2(a) ||
        b < 1 || b > 64 || c < 1 || c > 8 || e < 1 || e > 8)
        return bad(reterr, errlen, key, v,
                   "local,tile,rows_per_subgroup,unroll (local a power of 2 up to 1024, "
                   "tile 1-64, the others 1-8)");
    *g = (struct llm_mm_geom){ a, b, c, e };
    return 0;
}

static int set_switch(enum llm_switch *s, const char *key, const char *v, char *reterr,
                      size_t errlen)
{
    if (strcmp(v, "0") && strcmp(v, "1"))
        return bad(reterr, errlen, key, v, "0 or 1");
    *s = v[0] == '1' ? LLM_SWITCH_ON : LLM_SWITCH_OFF;
    return 0;
}

/* "a,b" into *ra, *rb when a is in [alo, ahi] (a power of 2 if pow2) and
 * b in [blo, bhi], a multiple of bmul. */
static bool parse_pair(const char *v, unsigned alo, unsigned ahi, bool pow2, unsigned blo,
                       unsigned bhi, unsigned bmul, uint32_t *ra, uint32_t *rb)
{
    unsigned a, b;
    char extra;
    if (sscanf(v, "%u,%u%c", &a, &b, &extra) != 2 || a < alo || a > ahi || (pow2 && !is_pow2(a)) ||
        b < blo || b > bhi || b % bmul)
        return false;
    *ra = a;
    *rb = b;
    return true;
}

int llm_tuning_set(struct llm_tuning *t, const char *key, const char *v, char *reterr,
                   size_t errlen)
{
    if (!strcmp(key, "mm"))
        return set_geom(&t->mm, key, v, reterr, errlen);
    if (!strcmp(key, "mm_wide"))
        return set_geom(&t->mm_wide, key, v, reterr, errlen);
    if (!strcmp(key, "mm_one"))
        return set_geom(&t->mm_one, key, v, reterr, errlen);
    if (!strcmp(key, "fuse"))
        return set_switch(&t->fuse, key, v, reterr, errlen);
    if (!strcmp(key, "coopmat"))
        return set_switch(&t->coopmat, key, v, reterr, errlen);
    if (!strcmp(key, "draw"))
        return set_switch(&t->draw, key, v, reterr, errlen);
    if (!strcmp(key, "idot"))
        return set_switch(&t->idot, key, v, reterr, errlen);
    if (!strcmp(key, "mm_xsh"))
        return parse_uint(v, 0, 8192, &t->mm_xsh) && t->mm_xsh % 4 == 0 ?
                       0 :
                       bad(reterr, errlen, key, v, "a multiple of 4 up to 8192");
    if (!strcmp(key, "mm_splitk"))
        return parse_uint(v, 1, 4, &t->mm_splitk) && t->mm_splitk != 3 ?
                       0 :
                       bad(reterr, errlen, key, v, "1, 2 or 4");
    if (!strcmp(key, "cm"))
        return parse_pair(v, 1, 8, false, 16, 256, 16, &t->cm_nsg, &t->cm_kc) ?
                       0 :
                       bad(reterr, errlen, key, v,
                           "subgroups,columns (subgroups 1-8, columns a multiple of 16 up to 256)");
    if (!strcmp(key, "att"))
        return parse_pair(v, 1, 16, true, 16, 65536, 1, &t->att_subgroups, &t->att_split) ?
                       0 :
                       bad(reterr, errlen, key, v,
                           "subgroups,split (subgroups 1-16, a power of 2; split 16-65536 positions)");
    if (!strcmp(key, "step_cache")) {
        uint32_t n;
        if (!parse_uint(v, 0, 1024, &n))
            return bad(reterr, errlen, key, v, "0 to 1024 recordings");
        t->step_cache = n ? n : LLM_STEP_CACHE_OFF;
        return 0;
    }
    snprintf(reterr, errlen, "unknown tuning key '%.40s'", key);
    return -ENOENT;
}

/* The matrix geometries by device kind. CPU drivers: few large workgroups
 * (launches cost), a subgroup takes 4 rows in turn; wide steps take 64
 * tokens at once, so that a step of up to 64 rows decodes every weight
 * once (issue #22), 4 rows a subgroup, so that each input load feeds 4
 * rows. GPUs: decode-sized steps one row a subgroup, 4 subgroups a
 * workgroup; wide steps 64 tokens, one row a subgroup (64 accumulators a
 * lane; not yet timed on a GPU). One-token steps
 * have a geometry of their own, tile 1, which holds no registers and runs
 * no loop for absent tokens. (docs/kernels.md, "Matrix kernel", has the sweeps
 * that chose them.) */
static const struct llm_mm_geom geom_cpu[3] = { { 64, 8, 1, 1 },
                                                { 64, 64, 4, 1 },
                                                { 64, 1, 1, 2 } };
static const struct llm_mm_geom geom_gpu[3] = { { 128, 8, 1, 1 },
                                                { 64, 64, 1, 1 },
                                                { 256, 1, 1, 2 } };

void gpu_tuning_resolve(const struct llm_tuning *in, bool cpu, struct llm_tuning *out)
{
    *out = *in;
    const struct llm_mm_geom *def = cpu ? geom_cpu : geom_gpu;
    struct llm_mm_geom *g[3] = { &out->mm, &out->mm_wide, &out->mm_one };
    for (int i = 0; i < 3; i++)
        if (!g[i]->local)
            *g[i] = def[i];
    /* Split-K 1: on the H200, 2 made a 7B step slower. */
    if (!out->mm_splitk)
        out->mm_splitk = 1;
    if (out->fuse == LLM_SWITCH_DEFAULT)
        out->fuse = LLM_SWITCH_ON;
    /* The matrix units are opt-in: they make wide steps cheaper but one-row
     * steps, so plain decoding, slower (docs/kernels.md, "Matrix units"). */
    if (out->coopmat == LLM_SWITCH_DEFAULT)
        out->coopmat = LLM_SWITCH_OFF;
    if (!out->cm_nsg) {
        out->cm_nsg = 4;
        out->cm_kc = 64;
    }
    /* Splits of 256 keys; 64 on CPUs, so that tests cover merging. */
    if (!out->att_subgroups) {
        out->att_subgroups = 4;
        out->att_split = cpu ? 64 : 256;
    }
    if (!out->step_cache)
        out->step_cache = GPU_STEP_CACHE_DEFAULT;
    if (out->draw == LLM_SWITCH_DEFAULT)
        out->draw = LLM_SWITCH_ON;
    /* The integer path (matmul_q8.comp) is opt-in until it has been timed
     * on a GPU; on lavapipe it is docs/kernels.md's "Integer dot products". */
    if (out->idot == LLM_SWITCH_DEFAULT)
        out->idot = LLM_SWITCH_OFF;
}
