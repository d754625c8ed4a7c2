/* Batch invariance through a model's seam (support_invariance.h). */
#include "support_invariance.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

void invariance_check_steps(const struct dec_model *dm, uint32_t max_t, uint32_t (*rnd)(void),
                            const char *label)
{
    uint32_t V = dm->n_vocab;
    float *alone = malloc((size_t)V * 4), *in = malloc((size_t)max_t * V * 4);
    int32_t prompt[16], *am = malloc(max_t * sizeof(int32_t));
    struct dec_row *rows = malloc(max_t * sizeof(*rows));
    assert_true(alone && in && am && rows);
    for (int i = 0; i < 16; i++)
        prompt[i] = i ? (int32_t)(rnd() % V) : 1;
    for (uint32_t T = 1; T <= max_t; T *= T == 64 ? 2 : 4) {
        assert_int_equal(dm->rewind(dm->ctx, 0), 0);
        assert_int_equal(dm->prefill(dm->ctx, prompt, 16, am, NULL), 0);
        uint32_t at = T == 1 ? 0 : T / 2, nlog = 0;
        for (uint32_t i = 0; i < T; i++) {
            rows[i] = (struct dec_row){ (int32_t)(rnd() % V), i ? (int32_t)(rnd() % i) : -1,
                                        DEC_WANT_LOGITS, 0 };
            nlog += i < at;
        }
        rows[at] = (struct dec_row){ 42, -1, DEC_WANT_LOGITS, 0 };
        assert_int_equal(dm->step(dm->ctx, rows, T, am, in), 0);
        if (T == 1)
            memcpy(alone, in, (size_t)V * 4);
        else if (memcmp(alone, in + (size_t)nlog * V, (size_t)V * 4) != 0)
            fail_msg("%s: T=%u logits differ from T=1", label, T);
    }
    free(alone);
    free(in);
    free(am);
    free(rows);
}
