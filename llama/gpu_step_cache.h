/* Private to llama/gpu_*.c: recorded steps, submitted again when a step of
 * the same shape comes.
 *
 * Recording a step costs the host about a microsecond a dispatch, time in
 * which the GPU idles, since a step's rows are known only once the last
 * step's results are (docs/kernels.md, "Recorded steps are submitted
 * again", has the figures).
 * Yet what a step records depends only on its shape (struct
 * gpu_step_key): n_past and each row's sequence reach the shaders through
 * the rows' positions and parents (attention.comp), the commits' KV moves
 * through the cache's `moves` (kv_commit.comp, an indirect dispatch), the
 * attention's split count through `stepargs` (indirect dispatches), the
 * sampling parameters with each sampled row, everything else through the
 * row buffers gpu_rows.c writes. So each
 * recording is kept, and submitted again when its shape comes back: every
 * plain step after the first, and a lookahead step whose window and
 * candidates come to a row count seen before. A recording never differs
 * from the one the step would make: the key holds every input of the
 * recording that varies between steps, and
 * no cache (tuning step_cache off) must give the same bits
 * (test_reused_steps). */
#ifndef LADE_LLAMA_GPU_STEP_CACHE_H
#define LADE_LLAMA_GPU_STEP_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "vk/vkr.h"

/* What a recorded step depends on besides the model and the sampling
 * parameters: its rows and the head's work (struct gpu_head_work,
 * gpu_rows.h), with each readback slot's source kept beside it
 * (gpu_recorded.slot_src). */
struct gpu_step_key {
    uint32_t n, nsel, nslot, ndraw, ntop, npen;
    bool argmax;
};

struct gpu_recorded {
    struct vkr_cmd cmd;
    bool valid;
    struct gpu_step_key key;
    uint32_t *slot_src; /* [max_rows], the first key.nslot meaningful */
    int ts0, ts1; /* the step's first and last timestamps */
    uint64_t used; /* the cache's clock when last submitted */
};

struct gpu_step_cache {
    struct gpu_recorded *e; /* [n], all made at load: a step allocates nothing */
    uint32_t n;
    uint64_t clock; /* for least-recently-used eviction */
    uint64_t hits, records; /* steps that reused a recording, steps recorded */
};

/* n recordings (0: none, every step records), each with its command
 * buffer, fence and timestamps. 0 or negative errno. */
int gpu_step_cache_build(struct gpu_step_cache *c, struct vkr_ctx *vk, uint32_t n,
                         uint32_t max_rows);
void gpu_step_cache_free(struct gpu_step_cache *c, struct vkr_ctx *vk);

/* The entry for a step with this key and these readback slots: a valid
 * recording of it (*ret_fresh false), or the entry it is to be recorded
 * into (*ret_fresh true: an unused one, else the least recently used,
 * keyed anew and invalid until the step has run). NULL without a cache. */
struct gpu_recorded *gpu_step_cache_take(struct gpu_step_cache *c, const struct gpu_step_key *k,
                                         const uint32_t *slot_src, bool *ret_fresh);

#endif
