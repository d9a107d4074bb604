/* The Litecoin proof of work, scrypt(P = S = header, N = 1024, r = 1, p = 1, dkLen = 32), in C.
 *
 * An optional accelerator of p2pool.bitcoin.hashes.scrypt_pow (hashlib.scrypt is the fallback): the
 * same function, written from the scrypt paper and RFC 7914 (Salsa20/8 core section 3, scryptBlockMix
 * section 4, scryptROMix section 5, PBKDF2-HMAC-SHA-256 with one iteration around it, section 6) and
 * FIPS 180-4 for SHA-256. With r = 1 a scrypt block is two 64-byte Salsa20 blocks; ROMix keeps
 * N = 1024 of them (128 KiB) and runs BlockMix 2 N times, which is nearly all of the cost.
 *
 * On x86-64 (SSE2 is part of the architecture) Salsa20/8 runs on four 32-bit lanes. The 4 x 4 word
 * matrix is kept along its diagonals, row k holding words (4k + 5l) mod 16 for lanes l = 0..3, so the
 * column round is four vector quarter-round steps and the row round is the same four steps after
 * rotating three of the rows by one, two and three lanes. ROMix only XORs, copies and adds words
 * position by position, so the whole computation stays in that order: a block is permuted once on
 * the way in and once on the way out. Other machines use the plain C core (scrypt_portable, also
 * built on x86-64 so that the tests cover it).
 *
 * Both entry points release the GIL while they hash, so threads hash several headers at once.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define HAVE_SSE2 1
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define NOINLINE __declspec(noinline)
#else
#define NOINLINE
#endif

#define SCRYPT_N 1024
#define BLOCK_WORDS 32          /* one scrypt block for r = 1: 2 x 16 words, 128 bytes */
#define DIGEST_SIZE 32

/* ---- byte order (scrypt is little-endian, SHA-256 big-endian) ---- */

static uint32_t read_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void write_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint32_t read_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void write_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* ---- SHA-256 (FIPS 180-4) ---- */

static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t SHA256_IV[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

typedef struct {
    uint32_t state[8];
    uint8_t buffer[64];
    size_t buffered;            /* bytes waiting in buffer */
    uint64_t length;            /* bytes hashed so far, buffer included */
} Sha256;

#define ROTR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_compress(uint32_t state[8], const uint8_t block[64]) {
    uint32_t w[64], a, b, c, d, e, f, g, h;
    int t;
    for (t = 0; t < 16; t++)
        w[t] = read_be32(block + 4 * t);
    for (t = 16; t < 64; t++) {
        uint32_t s0 = ROTR32(w[t - 15], 7) ^ ROTR32(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROTR32(w[t - 2], 17) ^ ROTR32(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    a = state[0]; b = state[1]; c = state[2]; d = state[3];
    e = state[4]; f = state[5]; g = state[6]; h = state[7];
    for (t = 0; t < 64; t++) {
        uint32_t sum1 = ROTR32(e, 6) ^ ROTR32(e, 11) ^ ROTR32(e, 25);
        uint32_t choose = (e & f) ^ (~e & g);
        uint32_t t1 = h + sum1 + choose + SHA256_K[t] + w[t];
        uint32_t sum0 = ROTR32(a, 2) ^ ROTR32(a, 13) ^ ROTR32(a, 22);
        uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + sum0 + majority;
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

static void sha256_init(Sha256 *ctx) {
    memcpy(ctx->state, SHA256_IV, sizeof ctx->state);
    ctx->buffered = 0;
    ctx->length = 0;
}

static void sha256_update(Sha256 *ctx, const uint8_t *data, size_t size) {
    ctx->length += size;
    if (ctx->buffered) {
        size_t take = 64 - ctx->buffered < size ? 64 - ctx->buffered : size;
        memcpy(ctx->buffer + ctx->buffered, data, take);
        ctx->buffered += take;
        data += take;
        size -= take;
        if (ctx->buffered < 64)
            return;
        sha256_compress(ctx->state, ctx->buffer);
        ctx->buffered = 0;
    }
    for (; size >= 64; data += 64, size -= 64)
        sha256_compress(ctx->state, data);
    memcpy(ctx->buffer, data, size);
    ctx->buffered = size;
}

static void sha256_final(Sha256 *ctx, uint8_t digest[DIGEST_SIZE]) {
    uint8_t padding[72] = {0x80};
    uint64_t bits = ctx->length * 8;
    size_t pad = (ctx->buffered < 56 ? 56 : 120) - ctx->buffered;
    int i;
    for (i = 0; i < 8; i++)
        padding[pad + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(ctx, padding, pad + 8);
    for (i = 0; i < 8; i++)
        write_be32(digest + 4 * i, ctx->state[i]);
}

/* ---- PBKDF2-HMAC-SHA-256 with one iteration (RFC 2104, RFC 8018) ---- */

typedef struct {
    Sha256 inner, outer;        /* after the key block XOR ipad / opad */
} HmacKey;

static void hmac_key(HmacKey *key, const uint8_t *secret, size_t size) {
    uint8_t block[64] = {0}, pad[64];
    int i;
    if (size > 64) {            /* a key longer than a block is replaced by its hash (an 80-byte header is) */
        Sha256 ctx;
        sha256_init(&ctx);
        sha256_update(&ctx, secret, size);
        sha256_final(&ctx, block);
    } else {
        memcpy(block, secret, size);
    }
    for (i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x36;
    sha256_init(&key->inner);
    sha256_update(&key->inner, pad, 64);
    for (i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x5c;
    sha256_init(&key->outer);
    sha256_update(&key->outer, pad, 64);
}

/* out = T_1 || T_2 || ... (out_size bytes, a multiple of 32), T_i = HMAC(key, salt || INT_BE(i)) */
static void pbkdf2_once(const HmacKey *key, const uint8_t *salt, size_t salt_size, uint8_t *out, size_t out_size) {
    Sha256 salted = key->inner, ctx;
    uint8_t counter[4], inner_digest[DIGEST_SIZE];
    uint32_t i;
    sha256_update(&salted, salt, salt_size);
    for (i = 1; out_size; i++, out += DIGEST_SIZE, out_size -= DIGEST_SIZE) {
        write_be32(counter, i);
        ctx = salted;
        sha256_update(&ctx, counter, 4);
        sha256_final(&ctx, inner_digest);
        ctx = key->outer;
        sha256_update(&ctx, inner_digest, DIGEST_SIZE);
        sha256_final(&ctx, out);
    }
}

/* ---- Salsa20/8 and ROMix, plain C ---- */

#define ROTL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
/* one quarter-round: b, c, d, a in turn take the rotated sum of the two words before them */
#define QUARTER(a, b, c, d) do { \
        b ^= ROTL32(a + d, 7);  c ^= ROTL32(b + a, 9); \
        d ^= ROTL32(c + b, 13); a ^= ROTL32(d + c, 18); } while (0)

/* block = Salsa20/8(block ^ other), words in the natural order */
static void salsa8_xor_portable(uint32_t block[16], const uint32_t other[16]) {
    uint32_t x[16];
    int i;
    for (i = 0; i < 16; i++)
        x[i] = block[i] ^= other[i];
    for (i = 0; i < 8; i += 2) {
        QUARTER(x[0], x[4], x[8], x[12]);  QUARTER(x[5], x[9], x[13], x[1]);      /* columns */
        QUARTER(x[10], x[14], x[2], x[6]); QUARTER(x[15], x[3], x[7], x[11]);
        QUARTER(x[0], x[1], x[2], x[3]);   QUARTER(x[5], x[6], x[7], x[4]);       /* rows */
        QUARTER(x[10], x[11], x[8], x[9]); QUARTER(x[15], x[12], x[13], x[14]);
    }
    for (i = 0; i < 16; i++)
        block[i] += x[i];
}

/* BlockMix for r = 1: B0 = Salsa(B0 ^ B1), then B1 = Salsa(B1 ^ B0) */
static void blockmix_portable(uint32_t x[BLOCK_WORDS]) {
    salsa8_xor_portable(x, x + 16);
    salsa8_xor_portable(x + 16, x);
}

static void romix_portable(uint8_t block[128], uint32_t *v) {
    uint32_t x[BLOCK_WORDS];
    int i, k;
    for (k = 0; k < BLOCK_WORDS; k++)
        x[k] = read_le32(block + 4 * k);
    for (i = 0; i < SCRYPT_N; i++) {
        memcpy(v + i * BLOCK_WORDS, x, sizeof x);
        blockmix_portable(x);
    }
    for (i = 0; i < SCRYPT_N; i++) {
        const uint32_t *chosen = v + (x[16] & (SCRYPT_N - 1)) * BLOCK_WORDS;   /* Integerify mod N */
        for (k = 0; k < BLOCK_WORDS; k++)
            x[k] ^= chosen[k];
        blockmix_portable(x);
    }
    for (k = 0; k < BLOCK_WORDS; k++)
        write_le32(block + 4 * k, x[k]);
}

/* ---- Salsa20/8 and ROMix, SSE2 ---- */

#ifdef HAVE_SSE2
/* t ^= (a + b) <<< n, on four lanes */
#define STEP(t, a, b, n) do { __m128i sum_ = _mm_add_epi32(a, b); \
        t = _mm_xor_si128(t, _mm_slli_epi32(sum_, n)); t = _mm_xor_si128(t, _mm_srli_epi32(sum_, 32 - (n))); } while (0)

/* The eight rounds of Salsa20/8 on the rows r0..r3 of one block in the diagonal order (file comment),
 * and on two independent blocks at once, step by step: one block is a chain of dependent steps that
 * leaves most of the vector units idle, and a second hash fills them nearly for free. */
#define COLUMN_STEPS(step, r0, r1, r2, r3) \
        step(r1, r0, r3, 7); step(r2, r1, r0, 9); step(r3, r2, r1, 13); step(r0, r3, r2, 18)
#define ROW_STEPS(step, r0, r1, r2, r3) \
        step(r3, r0, r1, 7); step(r2, r3, r0, 9); step(r1, r2, r3, 13); step(r0, r1, r2, 18)
#define TO_ROWS(r1, r2, r3) \
        r1 = _mm_shuffle_epi32(r1, 0x93); r2 = _mm_shuffle_epi32(r2, 0x4e); r3 = _mm_shuffle_epi32(r3, 0x39)
#define TO_COLUMNS(r1, r2, r3) \
        r1 = _mm_shuffle_epi32(r1, 0x39); r2 = _mm_shuffle_epi32(r2, 0x4e); r3 = _mm_shuffle_epi32(r3, 0x93)

/* b[0..3] = Salsa20/8(b ^ other) */
static inline void salsa8_xor_sse2(__m128i *b, const __m128i *other) {
    __m128i r0 = b[0] = _mm_xor_si128(b[0], other[0]), r1 = b[1] = _mm_xor_si128(b[1], other[1]);
    __m128i r2 = b[2] = _mm_xor_si128(b[2], other[2]), r3 = b[3] = _mm_xor_si128(b[3], other[3]);
    int round;
    for (round = 0; round < 8; round += 2) {
        COLUMN_STEPS(STEP, r0, r1, r2, r3);
        TO_ROWS(r1, r2, r3);
        ROW_STEPS(STEP, r0, r1, r2, r3);
        TO_COLUMNS(r1, r2, r3);
    }
    b[0] = _mm_add_epi32(b[0], r0); b[1] = _mm_add_epi32(b[1], r1);
    b[2] = _mm_add_epi32(b[2], r2); b[3] = _mm_add_epi32(b[3], r3);
}

/* the same on two blocks, their steps interleaved. Out of line on purpose: inlined into ROMix the
 * compiler runs out of the sixteen vector registers and spills rows of the rounds (twice as slow, measured
 * with gcc 12); called, it keeps the eight rows in registers and the rest in memory. */
#define STEP2(t, a, b, n) STEP(t, a, b, n); STEP(t##_, a##_, b##_, n)
static NOINLINE void salsa8_xor_sse2_pair(__m128i *b, const __m128i *other, __m128i *c, const __m128i *other_c) {
    __m128i r0 = b[0] = _mm_xor_si128(b[0], other[0]), r1 = b[1] = _mm_xor_si128(b[1], other[1]);
    __m128i r2 = b[2] = _mm_xor_si128(b[2], other[2]), r3 = b[3] = _mm_xor_si128(b[3], other[3]);
    __m128i r0_ = c[0] = _mm_xor_si128(c[0], other_c[0]), r1_ = c[1] = _mm_xor_si128(c[1], other_c[1]);
    __m128i r2_ = c[2] = _mm_xor_si128(c[2], other_c[2]), r3_ = c[3] = _mm_xor_si128(c[3], other_c[3]);
    int round;
    for (round = 0; round < 8; round += 2) {
        COLUMN_STEPS(STEP2, r0, r1, r2, r3);
        TO_ROWS(r1, r2, r3); TO_ROWS(r1_, r2_, r3_);
        ROW_STEPS(STEP2, r0, r1, r2, r3);
        TO_COLUMNS(r1, r2, r3); TO_COLUMNS(r1_, r2_, r3_);
    }
    b[0] = _mm_add_epi32(b[0], r0); b[1] = _mm_add_epi32(b[1], r1);
    b[2] = _mm_add_epi32(b[2], r2); b[3] = _mm_add_epi32(b[3], r3);
    c[0] = _mm_add_epi32(c[0], r0_); c[1] = _mm_add_epi32(c[1], r1_);
    c[2] = _mm_add_epi32(c[2], r2_); c[3] = _mm_add_epi32(c[3], r3_);
}

/* position 4 row + lane of a 16-word half holds word (4 row + 5 lane) mod 16 = 5 position mod 16 */
static void to_diagonal_order(const uint8_t block[128], __m128i x[8]) {
    uint32_t words[BLOCK_WORDS];
    int k;
    for (k = 0; k < BLOCK_WORDS; k++)
        words[k] = read_le32(block + 4 * ((k & 16) + (k & 15) * 5 % 16));
    for (k = 0; k < 8; k++)
        x[k] = _mm_loadu_si128((const __m128i *)(words + 4 * k));
}

static void from_diagonal_order(const __m128i x[8], uint8_t block[128]) {
    uint32_t words[BLOCK_WORDS];
    int k;
    for (k = 0; k < 8; k++)
        _mm_storeu_si128((__m128i *)(words + 4 * k), x[k]);
    for (k = 0; k < BLOCK_WORDS; k++)
        write_le32(block + 4 * ((k & 16) + (k & 15) * 5 % 16), words[k]);
}

/* Integerify(x) mod N: word 0 of the second half, which the diagonal order leaves in place */
#define INTEGERIFY(x) ((uint32_t)_mm_cvtsi128_si32((x)[4]) & (SCRYPT_N - 1))

static void romix_sse2(uint8_t block[128], __m128i *v) {
    __m128i x[8];
    int i, k;
    to_diagonal_order(block, x);
    for (i = 0; i < SCRYPT_N; i++) {
        for (k = 0; k < 8; k++)
            v[8 * i + k] = x[k];
        salsa8_xor_sse2(x, x + 4);
        salsa8_xor_sse2(x + 4, x);
    }
    for (i = 0; i < SCRYPT_N; i++) {
        const __m128i *chosen = v + 8 * INTEGERIFY(x);
        for (k = 0; k < 8; k++)
            x[k] = _mm_xor_si128(x[k], chosen[k]);
        salsa8_xor_sse2(x, x + 4);
        salsa8_xor_sse2(x + 4, x);
    }
    from_diagonal_order(x, block);
}

/* ROMix of two blocks at once, each with its own scratch v (8 N vectors) */
static void romix_sse2_pair(uint8_t block[128], uint8_t block_c[128], __m128i *v, __m128i *v_c) {
    __m128i x[8], y[8];
    int i, k;
    to_diagonal_order(block, x);
    to_diagonal_order(block_c, y);
    for (i = 0; i < SCRYPT_N; i++) {
        for (k = 0; k < 8; k++) {
            v[8 * i + k] = x[k];
            v_c[8 * i + k] = y[k];
        }
        salsa8_xor_sse2_pair(x, x + 4, y, y + 4);
        salsa8_xor_sse2_pair(x + 4, x, y + 4, y);
    }
    for (i = 0; i < SCRYPT_N; i++) {
        const __m128i *chosen = v + 8 * INTEGERIFY(x), *chosen_c = v_c + 8 * INTEGERIFY(y);
        for (k = 0; k < 8; k++) {
            x[k] = _mm_xor_si128(x[k], chosen[k]);
            y[k] = _mm_xor_si128(y[k], chosen_c[k]);
        }
        salsa8_xor_sse2_pair(x, x + 4, y, y + 4);
        salsa8_xor_sse2_pair(x + 4, x, y + 4, y);
    }
    from_diagonal_order(x, block);
    from_diagonal_order(y, block_c);
}
#endif

/* ---- scrypt ---- */

#define V_BYTES ((size_t)SCRYPT_N * BLOCK_WORDS * 4)

typedef enum { CORE_BEST, CORE_PORTABLE } Core;

/* PBKDF2 in, ROMix, PBKDF2 out: digests[i] = scrypt(P = S = record i) for count records of `size` bytes
 * (N = 1024, r = 1, p = 1, dkLen = 32); v is 2 V_BYTES of scratch, 16-aligned. With SSE2 the records go
 * through ROMix two at a time. */
static void scrypt_records(const uint8_t *records, size_t size, size_t count, uint8_t *digests, void *v, Core core) {
    HmacKey keys[2];
    uint8_t blocks[2][128];
    size_t i = 0;
    (void)core;                 /* without SSE2 there is only the portable core */
#ifdef HAVE_SSE2
    for (; core == CORE_BEST && i + 2 <= count; i += 2) {
        int k;
        for (k = 0; k < 2; k++) {
            hmac_key(&keys[k], records + (i + k) * size, size);
            pbkdf2_once(&keys[k], records + (i + k) * size, size, blocks[k], 128);
        }
        romix_sse2_pair(blocks[0], blocks[1], (__m128i *)v, (__m128i *)v + 8 * SCRYPT_N);
        for (k = 0; k < 2; k++)
            pbkdf2_once(&keys[k], blocks[k], 128, digests + (i + k) * DIGEST_SIZE, DIGEST_SIZE);
    }
#endif
    for (; i < count; i++) {
        hmac_key(&keys[0], records + i * size, size);
        pbkdf2_once(&keys[0], records + i * size, size, blocks[0], 128);
#ifdef HAVE_SSE2
        if (core == CORE_BEST)
            romix_sse2(blocks[0], (__m128i *)v);
        else
#endif
            romix_portable(blocks[0], (uint32_t *)v);
        pbkdf2_once(&keys[0], blocks[0], 128, digests + i * DIGEST_SIZE, DIGEST_SIZE);
    }
}

/* bytes of count digests; the GIL is released while hashing */
static PyObject *hash_records(const Py_buffer *view, size_t size, size_t count, Core core) {
    PyObject *result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * DIGEST_SIZE));
    void *v;
    if (result == NULL)
        return NULL;
    v = PyMem_RawMalloc(2 * V_BYTES);   /* malloc: 16-byte aligned on the machines with SSE2 */
    if (v == NULL) {
        Py_DECREF(result);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    scrypt_records((const uint8_t *)view->buf, size, count, (uint8_t *)PyBytes_AS_STRING(result), v, core);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(v);
    return result;
}

static PyObject *hash_one(PyObject *arg, Core core) {
    Py_buffer view;
    PyObject *result;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    result = hash_records(&view, (size_t)view.len, 1, core);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *scrypt_one(PyObject *module, PyObject *arg) {
    (void)module;
    return hash_one(arg, CORE_BEST);
}

static PyObject *scrypt_portable(PyObject *module, PyObject *arg) {
    (void)module;
    return hash_one(arg, CORE_PORTABLE);
}

static PyObject *scrypt_many(PyObject *module, PyObject *args) {
    Py_buffer view;
    Py_ssize_t size;
    PyObject *result;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*n:scrypt_many", &view, &size))
        return NULL;
    if (size <= 0 || view.len % size != 0) {
        PyErr_Format(PyExc_ValueError, "%zd bytes are not a whole number of %zd-byte records", view.len, size);
        PyBuffer_Release(&view);
        return NULL;
    }
    result = hash_records(&view, (size_t)size, (size_t)(view.len / size), CORE_BEST);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef METHODS[] = {
    {"scrypt", scrypt_one, METH_O,
     "scrypt(data) -> 32 bytes: scrypt(P = S = data, N = 1024, r = 1, p = 1, dkLen = 32), the GIL released."},
    {"scrypt_many", scrypt_many, METH_VARARGS,
     "scrypt_many(records, size) -> the 32-byte scrypt of each size-byte record of `records`, concatenated."},
    {"scrypt_portable", scrypt_portable, METH_O,
     "scrypt_portable(data): scrypt(data) with the plain C Salsa20/8 of machines without SSE2."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "p2pool.bitcoin._scrypt",
    "scrypt(N=1024, r=1, p=1) proof of work in C (optional accelerator of p2pool.bitcoin.hashes).",
    -1, METHODS, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scrypt(void) {
    PyObject *module = PyModule_Create(&MODULE);
#ifdef HAVE_SSE2
    const char *core = "sse2";
#else
    const char *core = "portable";
#endif
    if (module != NULL && PyModule_AddStringConstant(module, "SALSA_CORE", core) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
