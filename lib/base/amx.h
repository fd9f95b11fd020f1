/* amx.h - products with bf16 and f16 weights on Intel's AMX tiles (Sapphire
 * Rapids and later), as exact as fp32's sgemm.
 *
 * A tile product multiplies bf16 values and adds in fp32. The weights are bf16
 * already, or f16 cut exactly into two bf16 parts; each fp32 activation x is cut
 * into three bf16 parts, x = hi + mid + lo exactly (hi its top 8 significant
 * bits, mid the next 8, lo the last 8), and each part's product with a weight's
 * part is exact in fp32. The product of the three parts with the weights' parts,
 * summed in fp32, is therefore the fp32 product in another summation order, as
 * sgemm's is: the tests hold it to sgemm's result within a few units in the last
 * place of the sum of |terms|. (Inputs below 2^-110, whose lo part is a bf16
 * subnormal, lose that part: the tiles read subnormals as zero. A non-finite
 * input goes through as hi alone; with f16 weights, an infinite one may give NaN
 * where sgemm gives an infinity: it meets the lo part, often 0, of every
 * weight.)
 *
 * Only the amx table of base/cpu.h reaches these (cpu()->tiles): the code uses
 * AMX and AVX-512 instructions. The weights W (O, I) are bf16 or f16 in the Hugging
 * Face [out, in] layout, at any address; activations fp32, row-major. Letters:
 * N rows, O and I the weight's rows and columns. */
#ifndef PARE_AMX_H
#define PARE_AMX_H

#include <stdbool.h>
#include <stdint.h>

/* Whether this CPU has AMX-BF16 and the system lets this process use the tiles
 * (it asks once). */
bool amx_supported(void);

/* How W's values are stored: bf16, or f16 (each cut into two bf16 parts, hi and
 * lo, whose sum it is exactly: six products where bf16 takes three). */
enum amx_weights { AMX_BF16, AMX_F16 };

/* out (N, O) = in (N, I) @ W^T, or += when accumulate (O = nout, I = nin). */
void amx_product(float *out, const float *in, const void *w, enum amx_weights wt, int N, int nout, int nin,
                 bool accumulate);

/* din (N, I) += dout (N, O) @ W. */
void amx_input_gradient(float *din, const float *dout, const void *w, enum amx_weights wt, int N, int nout, int nin);

#endif
