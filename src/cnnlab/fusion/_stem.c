/* The first conv block of a CNN as one CPU kernel: a stride-1 convolution of a few input
   channels, bias, 2x2 max-pool (stride 2, floor) and optionally relu, forward and backward.

   PyTorch runs these as three ops that each write a full-size map; here each pooled output is
   computed from the four conv outputs under its window, held in registers, and only the pooled
   map and a uint8 window position per value are written. The backward needs no input gradient
   (the input is the data), only the weight and bias gradients, summed in registers per block of
   16 channels. Arithmetic is fp32; the output is fp32 or bf16 (round to nearest even).

   Vectors are GCC/Clang vector extensions, so the file builds for any target the compiler has
   (-march=native picks AVX-512 where the CPU has it). Built and loaded by _native.py. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16
#define GROUP 4 /* blocks of LANES channels per pass: 16 accumulators + broadcasts fit 32 registers */
#define WIDE (LANES * GROUP)
#define MAXKK 75 /* weights per channel the backward handles: 5x5 colour */

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint32_t vu __attribute__((vector_size(64)));
typedef uint16_t vh __attribute__((vector_size(32)));
typedef uint8_t vb __attribute__((vector_size(16)));

typedef struct {
    const float *x; const float *wt; const float *bias; const void *g;
    void *out; uint8_t *idx; float *gw;
    int n0, n1, cin, hx, wx, k, cout, cpad, hp, wp, bf16, relu;
} Job;

static inline vf loadf(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline vf pick(vi mask, vf yes, vf no) { return (vf)(((vi)yes & mask) | ((vi)no & ~mask)); }

/* Lanes [at, at + bw) of a row of channels, bw <= LANES; missing lanes read as zero. */
static inline vf load_g(const Job *j, size_t at, int bw) {
    if (bw == LANES) { /* the common case, with fixed-size copies the compiler turns into loads */
        if (!j->bf16) return loadf((const float *)j->g + at);
        vh hv; memcpy(&hv, (const uint16_t *)j->g + at, sizeof hv);
        return (vf)(__builtin_convertvector(hv, vu) << 16);
    }
    if (j->bf16) {
        uint16_t h[LANES] = {0};
        memcpy(h, (const uint16_t *)j->g + at, sizeof(uint16_t) * bw);
        vh hv; memcpy(&hv, h, sizeof hv);
        return (vf)(__builtin_convertvector(hv, vu) << 16);
    }
    float f[LANES] = {0};
    memcpy(f, (const float *)j->g + at, sizeof(float) * bw);
    return loadf(f);
}

static inline void store_out(const Job *j, vf best, vi q, size_t at, int bw) {
    if (j->bf16) {
        vu u = (vu)best;
        vu nan = (vu)(best != best);
        u = (nan & (u | 0x400000u)) | (~nan & (u + 0x7fffu + ((u >> 16) & 1u))); /* a NaN stays one;
                                                                 the rest round to nearest even */
        vh hv = __builtin_convertvector(u >> 16, vh);
        if (bw == LANES) memcpy((uint16_t *)j->out + at, &hv, sizeof hv);
        else memcpy((uint16_t *)j->out + at, &hv, sizeof(uint16_t) * bw);
    } else if (bw == LANES) {
        memcpy((float *)j->out + at, &best, sizeof best);
    } else {
        memcpy((float *)j->out + at, &best, sizeof(float) * bw);
    }
    if (j->idx) {
        vb qb = __builtin_convertvector(q, vb);
        if (bw == LANES) memcpy(j->idx + at, &qb, sizeof qb);
        else memcpy(j->idx + at, &qb, bw);
    }
}

static inline int lanes(const Job *j, int c) { int r = j->cout - c; return r < LANES ? r : LANES; }

/* The conv at the 4 positions of one 2x2 window for GROUP blocks of channels from c0, then the
   max over the window (first position wins ties, as PyTorch), optionally relu. */
static void fwd_group(const Job *j, const float *img, int i, int jj, int c0, size_t at) {
    int k = j->k;
    vf a[GROUP][4];
    for (int b = 0; b < GROUP; b++) {
        vf bias = loadf(j->bias + c0 + b * LANES);
        for (int q = 0; q < 4; q++) a[b][q] = bias;
    }
    for (int ci = 0; ci < j->cin; ci++)
        for (int ky = 0; ky < k; ky++) {
            const float *row = img + ((size_t)ci * j->hx + 2 * i + ky) * j->wx + 2 * jj;
            for (int kx = 0; kx < k; kx++) {
                const float *wr = j->wt + (size_t)((ci * k + ky) * k + kx) * j->cpad + c0;
                float v0 = row[kx], v1 = row[kx + 1], v2 = row[kx + j->wx], v3 = row[kx + j->wx + 1];
                for (int b = 0; b < GROUP; b++) {
                    vf w = loadf(wr + b * LANES);
                    a[b][0] += v0 * w; a[b][1] += v1 * w; a[b][2] += v2 * w; a[b][3] += v3 * w;
                }
            }
        }
    for (int b = 0; b < GROUP; b++) {
        int c = c0 + b * LANES;
        if (c >= j->cout) break;
        vi q = (vi){0}, m;
        vf best = a[b][0];
        for (int p = 1; p < 4; p++) {
            m = (a[b][p] > best) | (a[b][p] != a[b][p]); /* a NaN wins, as in PyTorch */
            best = pick(m, a[b][p], best);
            q = (q & ~m) | (m & p);
        }
        if (j->relu) {
            m = best <= 0.0f; /* a NaN stays NaN, as through torch.relu */
            best = pick(m, (vf){0}, best);
            q = (q & ~m) | (m & 4); /* 4: no gradient flows back */
        }
        store_out(j, best, q, at + b * LANES, lanes(j, c));
    }
}

static void *fwd_range(void *arg) {
    const Job *j = arg;
    for (int n = j->n0; n < j->n1; n++) {
        const float *img = j->x + (size_t)n * j->cin * j->hx * j->wx;
        for (int i = 0; i < j->hp; i++)
            for (int jj = 0; jj < j->wp; jj++) {
                size_t base = (((size_t)n * j->hp + i) * j->wp + jj) * j->cout;
                for (int c0 = 0; c0 < j->cout; c0 += WIDE) fwd_group(j, img, i, jj, c0, base + c0);
            }
    }
    return NULL;
}

/* Channel block c (bw lanes) at one pooled position: the output gradient split by the window
   position its max came from (idx; 4 = none, cut by relu). */
static inline void split_g(const Job *j, size_t at, int bw, vf g[4]) {
    vb qb;
    if (bw == LANES) {
        memcpy(&qb, j->idx + at, sizeof qb);
    } else {
        uint8_t qpad[LANES];
        memset(qpad, 4, LANES);
        memcpy(qpad, j->idx + at, bw);
        memcpy(&qb, qpad, sizeof qb);
    }
    vi q = __builtin_convertvector(qb, vi);
    vf gv = load_g(j, at, bw);
    for (int p = 0; p < 4; p++) g[p] = pick(q == p, gv, (vf){0});
}

/* The weight and bias gradient of one block of channels over this job's images, summed in
   registers: kk (the weights per channel) is a constant in the common cases, see bwd_block. */
static inline __attribute__((always_inline)) void bwd_rows(const Job *j, int c, const int kk) {
    int k = j->k, bw = lanes(j, c);
    vf acc[MAXKK + 1];
    size_t off[MAXKK]; /* each weight's pixel, relative to the window's top left */
    for (int r = 0; r < kk; r++)
        off[r] = ((size_t)(r / (k * k)) * j->hx + r / k % k) * j->wx + r % k;
    for (int r = 0; r <= kk; r++) acc[r] = (vf){0};
    for (int n = j->n0; n < j->n1; n++) {
        const float *img = j->x + (size_t)n * j->cin * j->hx * j->wx;
        for (int i = 0; i < j->hp; i++)
            for (int jj = 0; jj < j->wp; jj++) {
                vf g[4];
                split_g(j, (((size_t)n * j->hp + i) * j->wp + jj) * j->cout + c, bw, g);
                acc[kk] += g[0] + g[1] + g[2] + g[3];
                for (int r = 0; r < kk; r++) {
                    const float *v = img + ((size_t)2 * i * j->wx + 2 * jj) + off[r];
                    acc[r] += g[0] * v[0] + g[1] * v[1] + g[2] * v[j->wx] + g[3] * v[j->wx + 1];
                }
            }
    }
    for (int r = 0; r <= kk; r++) memcpy(j->gw + (size_t)r * j->cpad + c, &acc[r], sizeof(vf));
}

static void bwd_block(const Job *j, int c) {
    int kk = j->cin * j->k * j->k;
    switch (kk) { /* constant cases keep the accumulators in registers */
    case 9: bwd_rows(j, c, 9); break;   /* 3x3, grey */
    case 25: bwd_rows(j, c, 25); break; /* 5x5, grey */
    case 27: bwd_rows(j, c, 27); break; /* 3x3, colour */
    default: bwd_rows(j, c, kk); /* kk <= MAXKK, checked by the caller */
    }
}

static void *bwd_range(void *arg) {
    const Job *j = arg;
    for (int c = 0; c < j->cout; c += LANES) bwd_block(j, c);
    return NULL;
}

/* Runs fn on every job, one job per thread of an OpenMP team. The library links the OpenMP
   runtime PyTorch has already loaded (libgomp.so.1), so the team is PyTorch's own warm thread
   pool: threads of our own would wait for a core while PyTorch's idle workers spin on it. Built
   without OpenMP, the jobs run one after another. */
static void run(Job *jobs, int threads, void *(*fn)(void *)) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static, 1)
#endif
    for (int t = 0; t < threads; t++) fn(&jobs[t]);
}

static int setup(Job *jobs, Job *tmpl, int n, int threads) {
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    if (threads > n) threads = n > 0 ? n : 1;
    tmpl->cpad = (tmpl->cout + WIDE - 1) / WIDE * WIDE;
    tmpl->hp = (tmpl->hx - tmpl->k + 1) / 2;
    tmpl->wp = (tmpl->wx - tmpl->k + 1) / 2;
    for (int t = 0; t < threads; t++) {
        jobs[t] = *tmpl;
        jobs[t].n0 = (int)((long)n * t / threads);
        jobs[t].n1 = (int)((long)n * (t + 1) / threads);
    }
    return threads;
}

/* x: [n, cin, hx, wx] fp32, already zero-padded; wt: [cin*k*k, cpad] fp32 and bias: [cpad],
   cpad = cout rounded up to 64 with zero columns; out: [n, hp, wp, cout] bf16 or fp32; idx:
   the same shape in uint8, or NULL when no backward will run. */
int stem_forward(const float *x, const float *wt, const float *bias, void *out, uint8_t *idx,
                 int n, int cin, int hx, int wx, int k, int cout, int bf16, int relu, int threads) {
    Job tmpl = {0}, jobs[64];
    tmpl.x = x; tmpl.wt = wt; tmpl.bias = bias; tmpl.out = out; tmpl.idx = idx;
    tmpl.cin = cin; tmpl.hx = hx; tmpl.wx = wx; tmpl.k = k; tmpl.cout = cout;
    tmpl.bf16 = bf16; tmpl.relu = relu;
    run(jobs, setup(jobs, &tmpl, n, threads), fwd_range);
    return 0;
}

/* g: the output gradient, laid out as out; gw: [cin*k*k + 1, cpad] fp32, the weight gradient
   then the bias gradient. Each thread sums its own images; the partial sums are added in thread
   order, so a fixed thread count gives bit-identical results. */
int stem_backward(const float *x, const void *g, const uint8_t *idx, float *gw, int n, int cin,
                  int hx, int wx, int k, int cout, int bf16, int threads) {
    Job tmpl = {0}, jobs[64];
    tmpl.x = x; tmpl.g = g; tmpl.idx = (uint8_t *)idx;
    tmpl.cin = cin; tmpl.hx = hx; tmpl.wx = wx; tmpl.k = k; tmpl.cout = cout; tmpl.bf16 = bf16;
    threads = setup(jobs, &tmpl, n, threads);
    size_t size = ((size_t)cin * k * k + 1) * tmpl.cpad;
    float *part = calloc((size_t)threads * size, sizeof(float));
    if (!part) return 1;
    for (int t = 0; t < threads; t++) jobs[t].gw = part + (size_t)t * size;
    run(jobs, threads, bwd_range);
    for (size_t e = 0; e < size; e++) {
        float s = 0.0f;
        for (int t = 0; t < threads; t++) s += part[(size_t)t * size + e];
        gw[e] = s;
    }
    free(part);
    return 0;
}
