/* Activations quantised to 8 bits, per token, in blocks of 32 (q8_1-like):
 *   amax = max |x_i|;  d = amax * C127 (C127 the float nearest 1/127);
 *   id = q8_recip(d);  q_i = roundEven(x_i * id), within +-127;
 *   s = sum q_i (the block sum, for formats with a min term)
 * and a block whose amax is below 2^-100 (or NaN) all zero with d = 0.
 * llama/q8act.c computes the same bits on the CPU (the tests compare them
 * bit for bit), so every step here is exact or correctly rounded in IEEE
 * single precision, which Vulkan guarantees for *, + and - and for
 * roundEven, but not for / (2.5 ULP): the reciprocal is Newton's, from a
 * fixed bit-pattern seed, three steps of separately rounded * and -
 * (`precise`, so no driver fuses them into an fma the CPU does not do).
 * The 2^-100 floor keeps every value away from denormals, which a device
 * may flush. Only the token's own 32 values enter a block: row-local, so
 * the quantised inputs of a token do not depend on the step around it. */

/* 1/127 rounded to float (bits 0x3c010204; the decimal is exact) */
const float C127 = 0.0078740157186985015869140625;

float q8_recip(float a)
{
    precise float y = uintBitsToFloat(0x7ef311c3u - floatBitsToUint(a));
    for (int i = 0; i < 3; i++) {
        precise float e = 2.0 - a * y;
        y = y * e;
    }
    return y;
}

/* The four values v as signed bytes of one word (value i in byte i). */
uint q8_pack(ivec4 v)
{
    return (uint(v.x) & 0xffu) | ((uint(v.y) & 0xffu) << 8) | ((uint(v.z) & 0xffu) << 16) |
           (uint(v.w) << 24);
}

/* One block of 32 values, x[0..7] (vec4s): its 8 words, d and s. */
void q8_block(vec4 x[8], out uint q[8], out float d, out int s)
{
    float amax = 0.0;
    for (int i = 0; i < 8; i++) {
        vec4 a = abs(x[i]);
        amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
    }
    s = 0;
    if (!(amax >= uintBitsToFloat(0x0d800000u))) { /* 2^-100, and NaN */
        d = 0.0;
        for (int i = 0; i < 8; i++)
            q[i] = 0u;
        return;
    }
    precise float dd = amax * C127;
    float id = q8_recip(dd);
    d = dd;
    for (int i = 0; i < 8; i++) {
        precise vec4 v = x[i] * id;
        ivec4 qi = clamp(ivec4(roundEven(v)), ivec4(-127), ivec4(127));
        s += qi.x + qi.y + qi.z + qi.w;
        q[i] = q8_pack(qi);
    }
}
