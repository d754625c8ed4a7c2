/* Recorded steps kept for reuse (gpu_step_cache.h). */
#include "llama/gpu_step_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int gpu_step_cache_build(struct gpu_step_cache *c, struct vkr_ctx *vk, uint32_t n,
                         uint32_t max_rows)
{
    *c = (struct gpu_step_cache){ 0 };
    if (n == 0)
        return 0;
    c->e = calloc(n, sizeof(*c->e));
    if (!c->e)
        return -ENOMEM;
    for (; c->n < n; c->n++) {
        struct gpu_recorded *e = &c->e[c->n];
        e->slot_src = calloc(max_rows, sizeof(*e->slot_src));
        if (!e->slot_src)
            return -ENOMEM;
        int err = vkr_cmd_new(vk, 8, &e->cmd);
        if (err) {
            free(e->slot_src);
            return err;
        }
    }
    return 0;
}

void gpu_step_cache_free(struct gpu_step_cache *c, struct vkr_ctx *vk)
{
    for (uint32_t i = 0; i < c->n; i++) {
        if (vk)
            vkr_cmd_free(vk, &c->e[i].cmd);
        free(c->e[i].slot_src);
    }
    free(c->e);
    *c = (struct gpu_step_cache){ 0 };
}

static bool key_eq(const struct gpu_step_key *a, const struct gpu_step_key *b)
{
    return a->n == b->n && a->nsel == b->nsel && a->nslot == b->nslot && a->ndraw == b->ndraw &&
           a->ntop == b->ntop && a->npen == b->npen && a->argmax == b->argmax;
}

/* The recording for this key and these readback slots, or NULL. */
static struct gpu_recorded *find(struct gpu_step_cache *c, const struct gpu_step_key *k,
                                 const uint32_t *slot_src)
{
    for (uint32_t i = 0; i < c->n; i++) {
        struct gpu_recorded *e = &c->e[i];
        if (e->valid && key_eq(&e->key, k) &&
            !memcmp(e->slot_src, slot_src, k->nslot * sizeof(*slot_src)))
            return e;
    }
    return NULL;
}

/* An unused entry, else the least recently used. */
static struct gpu_recorded *victim(struct gpu_step_cache *c)
{
    struct gpu_recorded *v = &c->e[0];
    for (uint32_t i = 0; i < c->n && v->valid; i++)
        if (!c->e[i].valid || c->e[i].used < v->used)
            v = &c->e[i];
    return v;
}

struct gpu_recorded *gpu_step_cache_take(struct gpu_step_cache *c, const struct gpu_step_key *k,
                                         const uint32_t *slot_src, bool *ret_fresh)
{
    *ret_fresh = true;
    if (!c->n)
        return NULL;
    struct gpu_recorded *e = find(c, k, slot_src);
    *ret_fresh = !e;
    if (!e) {
        e = victim(c);
        e->valid = false;
        e->key = *k;
        memcpy(e->slot_src, slot_src, k->nslot * sizeof(*slot_src));
    }
    e->used = ++c->clock;
    return e;
}
