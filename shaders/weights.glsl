/* Reading weights of any supported ggml type as pairs of floats.
 * The weight buffer is bound as 32-bit words so that one shader serves every
 * format without 8- or 16-bit storage features; WTYPE (specialization
 * constant 0, the ggml type number) picks the decoder at pipeline build time.
 * Element indices are (row, k) with k even; rows are `ncols` elements long.
 * Host side: llama/gpu_model.c sets WTYPE from the tensor's GGUF type. */

layout(constant_id = 0) const uint WTYPE = 0;

const uint T_F32 = 0;
const uint T_F16 = 1;
const uint T_Q8_0 = 8;
const uint T_BF16 = 30;

/* Signed byte `b` (0..3) of word w. */
float sbyte(uint w, uint b)
{
    return float(int(w << (24u - 8u * b)) >> 24);
}

vec2 w_pair(uint row, uint k, uint ncols)
{
    if (WTYPE == T_F32) {
        uint i = row * ncols + k;
        return vec2(uintBitsToFloat(W[i]), uintBitsToFloat(W[i + 1u]));
    } else if (WTYPE == T_F16) {
        return unpackHalf2x16(W[(row * ncols + k) >> 1]);
    } else if (WTYPE == T_BF16) {
        uint w = W[(row * ncols + k) >> 1];
        return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u));
    } else { /* Q8_0: blocks of 32 int8 after an f16 scale, 34 bytes a block */
        uint blk = row * (ncols >> 5) + (k >> 5);
        uint base = blk * 34u;
        uint sw = W[base >> 2];
        float d = unpackHalf2x16((base & 2u) != 0u ? (sw >> 16) : sw).x;
        uint qb = base + 2u + (k & 31u); /* even, so both bytes share a word */
        uint qw = W[qb >> 2];
        uint sh = qb & 3u;
        return d * vec2(sbyte(qw, sh), sbyte(qw, sh + 1u));
    }
}
