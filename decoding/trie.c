/* Candidate trie for the verification branch: candidates that share a
 * prefix are verified once, since their shared rows would compute the same
 * thing (a row's result depends only on its visible chain). Nodes are
 * appended as they are created, so a parent always precedes its children,
 * as dec_row.parent requires. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decoding/dec-internal.h"

int dec_trie_init(struct dec_trie *t, uint32_t cap)
{
    memset(t, 0, sizeof(*t));
    t->node = malloc(sizeof(*t->node) * (cap ? cap : 1));
    if (!t->node)
        return -ENOMEM;
    t->cap = cap;
    dec_trie_reset(t);
    return 0;
}

void dec_trie_done(struct dec_trie *t)
{
    if (!t)
        return;
    free(t->node);
    memset(t, 0, sizeof(*t));
}

void dec_trie_reset(struct dec_trie *t)
{
    t->n = 0;
    t->n_cand = 0;
    t->root_child = -1;
}

int32_t dec_trie_child(const struct dec_trie *t, int32_t node, int32_t token)
{
    int32_t c = node < 0 ? t->root_child : t->node[node].first_child;
    for (; c >= 0; c = t->node[c].sibling)
        if (t->node[c].token == token)
            return c;
    return -1;
}

static int32_t add_child(struct dec_trie *t, int32_t parent, int32_t token, uint32_t depth)
{
    int32_t i = (int32_t)t->n++;
    struct dec_trie_node *nd = &t->node[i];
    nd->token = token;
    nd->parent = parent;
    nd->first_child = -1;
    nd->sibling = -1;
    nd->row = -1;
    nd->depth = depth;
    /* Append as last sibling so children stay in candidate (age) order. */
    int32_t *link = parent < 0 ? &t->root_child : &t->node[parent].first_child;
    while (*link >= 0)
        link = &t->node[*link].sibling;
    *link = i;
    return i;
}

void dec_trie_insert(struct dec_trie *t, const int32_t *cand, uint32_t len)
{
    int32_t at = -1;
    if (t->n + len > t->cap)
        return;
    for (uint32_t d = 0; d < len; d++) {
        int32_t c = dec_trie_child(t, at, cand[d]);
        at = c >= 0 ? c : add_child(t, at, cand[d], d + 1);
    }
    t->n_cand++;
}
