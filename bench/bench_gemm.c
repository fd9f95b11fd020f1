/* bench_gemm.c - pare's own FMA product (base/gemm.h) against OpenBLAS's sgemm on
 * the products of a LLaMA-7B layer's linear maps, for 640 tokens (a pare-score
 * batch of 10 x 64), on all of OpenBLAS's threads: the forward (bf16 weights read
 * as W^T), the input gradient (bf16 W) and the weight's gradient by panels of
 * rows (fp32 activations, matmul_panel_rows's panels). sgemm multiplies weights
 * already widened, and its time leaves the widening out. GFLOP/s, best of
 * ROUNDS (default 3) alternating rounds, and the ratio. pare runs its product
 * where the CPU's widest set is AVX2, or AVX-512 on AMD's (cpu()->gemm): on a CPU
 * whose table has none (Intel's with AVX-512), and PARE_CPU unset, the benchmark
 * runs itself again with PARE_CPU=avx2 OPENBLAS_CORETYPE=Haswell. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "base/blas.h"
#include "base/cpu.h"
#include "base/gemm.h"
#include "base/util.h"
#include "compute/matmul.h"
#include "model/tensor.h"

enum { N = 640, PRODUCTS = 3 };

static const char *const product_names[PRODUCTS] = {"forward", "input gradient", "weight gradient"};

typedef struct {
    const char *name;
    int nout, nin;
} map_shape;

static const map_shape maps[] = {{"q_proj", 4096, 4096}, {"gate_proj", 11008, 4096}, {"down_proj", 4096, 11008}};

static float *random_floats(size_t n)
{
    float *x = xmalloc_aligned(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rand() / RAND_MAX - 0.5f;
    return x;
}

/* One product p of map m, by pare's FMA product (own) or sgemm; its seconds. */
static double run(int p, bool own, const map_shape *m, const uint16_t *w, const float *wf, const float *x,
                  const float *dout, float *out)
{
    int O = m->nout, D = m->nin;
    tensor shape = tensor_wrap(NULL, O, D);
    int P = matmul_panel_rows(&shape);
    double t0 = now_seconds();
    if (p == 0 && own) {
        gemm_operand a = {x, D, GEMM_F32, false}, b = {w, D, GEMM_BF16, true};
        cpu()->gemm(out, O, &a, &b, N, O, D, false);
    } else if (p == 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, D, 1.0f, x, D, wf, D, 0.0f, out, O);
    } else if (p == 1 && own) {
        gemm_operand a = {dout, O, GEMM_F32, false}, b = {w, D, GEMM_BF16, false};
        cpu()->gemm(out, D, &a, &b, N, D, O, true);
    } else if (p == 1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, O, 1.0f, dout, O, wf, D, 1.0f, out, D);
    } else {
        for (int o0 = 0; o0 < O; o0 += P) {
            int rows = O - o0 < P ? O - o0 : P;
            if (own) {
                gemm_operand a = {dout + o0, O, GEMM_F32, true}, b = {x, D, GEMM_F32, false};
                cpu()->gemm(out, D, &a, &b, rows, D, N, false);
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, D, N, 1.0f, dout + o0, O, x, D, 0.0f, out,
                            D);
            }
        }
    }
    return now_seconds() - t0;
}

int main(int argc, char **argv)
{
    if (!cpu_supports(CPU_AVX2) || (getenv("PARE_CPU") && !cpu()->gemm)) {
        printf("bench_gemm: the %s table has no product of pare's own: nothing to compare\n", cpu()->name);
        return 0;
    }
    /* where the table has no product of pare's own: both held to AVX2 */
    if (!getenv("PARE_CPU") && !cpu()->gemm) {
        setenv("PARE_CPU", "avx2", 1);
        setenv("OPENBLAS_CORETYPE", "Haswell", 1);
        execv("/proc/self/exe", argv);
        die("bench_gemm: cannot run itself again held to AVX2");
    }
    blas_init(argc, argv);
    const char *r = getenv("ROUNDS");
    int rounds = r && atoi(r) > 0 ? atoi(r) : 3;
    printf("pare's FMA product against OpenBLAS sgemm (%s table, %d threads), %d tokens, GFLOP/s, best of %d\n",
           cpu()->name, blas_threads(), N, rounds);
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        const map_shape *m = &maps[i];
        size_t nw = (size_t)m->nout * m->nin, wide = (size_t)(m->nout > m->nin ? m->nout : m->nin);
        float *wf = random_floats(nw), *x = random_floats((size_t)N * m->nin);
        float *dout = random_floats((size_t)N * m->nout), *out = random_floats((size_t)N * wide);
        uint16_t *w = xmalloc(nw * sizeof *w);
        for (size_t k = 0; k < nw; k++) {
            w[k] = f32_to_bf16(wf[k]);
            wf[k] = bf16_to_f32(w[k]);
        }
        for (int p = 0; p < PRODUCTS; p++) {
            double best[2] = {1e30, 1e30};
            for (int round = 0; round < rounds; round++)
                for (int own = 0; own < 2; own++) {
                    double t = run(p, own, m, w, wf, x, dout, out);
                    best[own] = t < best[own] ? t : best[own];
                }
            double flop = 2.0 * N * nw;
            printf("  %-9s %-15s  pare %6.1f  sgemm %6.1f  %.2fx\n", m->name, product_names[p], flop / best[1] / 1e9,
                   flop / best[0] / 1e9, best[0] / best[1]);
        }
        free(wf), free(x), free(dout), free(out), free(w);
    }
    return 0;
}
