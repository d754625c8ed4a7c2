/* Activations quantised per token in blocks of 32 to two 8-bit planes:
 *   amax = max |x_i|;  d1 = amax * C127 (C127 the float nearest 1/127);
 *   id = q8_recip(d1);  q1_i = roundEven(x_i * id), within +-127;
 *   r_i = x_i - d1 * q1_i   (the product and the difference each rounded);
 *   q2_i = roundEven(r_i * (id * 256)), within +-127;
 *   d = d1 * 2^-8;  s = sum (256 q1_i + q2_i)  (for formats with a min)
 * so x_i ~ d (256 q1_i + q2_i), a 16-bit integer on one scale: about 15
 * bits of each value where one plane kept 8 (q1 alone, one scale for 32
 * values, put kernelc-22m's logits off by ~0.02 rms; docs/kernels.md).
 * The kernel keeps 8-bit packed dots, one a plane, and adds them as
 * 256 dot(qw, q1) + dot(qw, q2), exact in int32. A block whose amax is
 * below 2^-92 (or NaN) is all zero with d = 0.
 * llama/q8act.c computes the same bits on the CPU (the tests compare them
 * bit for bit), so every step here is exact or correctly rounded in IEEE
 * single precision, which Vulkan guarantees for *, + and - and for
 * roundEven, but not for / (2.5 ULP): the reciprocal is Newton's, from a
 * fixed bit-pattern seed, three steps of separately rounded * and -
 * (`precise`, so no driver fuses them into an fma the CPU does not do;
 * nor r's d1 * q1 into the difference). id * 256 and d1 * 2^-8 are exact.
 * The 2^-92 floor keeps every value away from denormals, which a device
 * may flush: d >= 2^-107 (as d1 was with the one plane's 2^-100), so the
 * term's dw * d stays normal for f16 scales dw >= 2^-14; a residual r
 * that is denormal gives q2 = 0 flushed or not (|r * id * 256| < 2^-11).
 * Only the token's own 32 values enter a block: row-local, so the
 * quantised inputs of a token do not depend on the step around it. */

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

/* One block of 32 values, x[0..7] (vec4s): its 16 words (q1's 8, then
 * q2's 8), d and s. */
void q8_block(vec4 x[8], out uint q[16], out float d, out int s)
{
    float amax = 0.0;
    for (int i = 0; i < 8; i++) {
        vec4 a = abs(x[i]);
        amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
    }
    s = 0;
    if (!(amax >= uintBitsToFloat(0x11800000u))) { /* 2^-92, and NaN */
        d = 0.0;
        for (int i = 0; i < 16; i++)
            q[i] = 0u;
        return;
    }
    precise float d1 = amax * C127;
    float id = q8_recip(d1);
    precise float id2 = id * 256.0;
    for (int i = 0; i < 8; i++) {
        precise vec4 v = x[i] * id;
        ivec4 q1 = clamp(ivec4(roundEven(v)), ivec4(-127), ivec4(127));
        precise vec4 pr = d1 * vec4(q1);
        precise vec4 r = x[i] - pr;
        precise vec4 v2 = r * id2;
        ivec4 q2 = clamp(ivec4(roundEven(v2)), ivec4(-127), ivec4(127));
        ivec4 qq = 256 * q1 + q2;
        s += qq.x + qq.y + qq.z + qq.w;
        q[i] = q8_pack(q1);
        q[8 + i] = q8_pack(q2);
    }
    precise float dd = d1 * (1.0 / 256.0);
    d = dd;
}
