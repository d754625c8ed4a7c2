#version 450
/* The repetition penalty on the GPU (decoding/dec.h, dec_penalized): for
 * penalized row j, the logits of the tokens in its list shrink (positive)
 * or grow (negative), in place, before argmax, draw.comp and topk.comp read
 * them. The host builds each list from the row's own sequence with every
 * token once, so no two lanes touch one logit. One workgroup a row. */
layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint LOCAL = 64;
layout(std430, binding = 0) buffer Lb { float L[]; };
/* [4 max_rows]: per penalized row its LM head row, its count, and its
 * sequence's penalty and 1 / penalty as float bits; then from 4 max_rows
 * the rows' lists, `stride` ids apart */
layout(std430, binding = 1) readonly buffer Pb { uint PEN[]; };
layout(push_constant) uniform P { uint n_vocab; uint max_rows; uint stride; } p;

void main()
{
    uint j = gl_WorkGroupID.x;
    uint base = PEN[4u * j] * p.n_vocab, n = PEN[4u * j + 1u];
    float penalty = uintBitsToFloat(PEN[4u * j + 2u]), inv_penalty = uintBitsToFloat(PEN[4u * j + 3u]);
    for (uint i = gl_LocalInvocationID.x; i < n; i += LOCAL) {
        uint v = PEN[4u * p.max_rows + j * p.stride + i];
        float l = L[base + v];
        /* inv_penalty is the host's 1.0f / penalty: one rounded product
         * either way, as in C. */
        precise float x = l > 0.0 ? l * inv_penalty : l * penalty;
        L[base + v] = x;
    }
}
