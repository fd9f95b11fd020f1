/* llama2c.h - Karpathy's llama2.c checkpoint (.bin, the legacy "version 0" export).
 *
 * Seven little-endian int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size (negative: an untied classifier follows at the end), seq_len; then
 * fp32 arrays, PyTorch [out][in] row-major:
 *   token_embedding (V, D), rms_att (L, D), wq (L, D, D), wk (L, KV*hd, D),
 *   wv (L, KV*hd, D), wo (L, D, D), rms_ffn (L, D), w1 (L, F, D), w2 (L, D, F),
 *   w3 (L, F, D), rms_final (D), freq_cis_real (seq_len, hd/2),
 *   freq_cis_imag (seq_len, hd/2) [unused], then wcls (V, D) when untied.
 * w1 is the gate projection, w3 the up projection, w2 the down projection. q and k
 * are in Meta's interleaved rotary layout (pairs (2i, 2i+1) rotate together), so
 * the model reads as rope_style "interleaved". */
#ifndef PARE_LLAMA2C_H
#define PARE_LLAMA2C_H

#include "model/model.h"

/* Load path into m (config, Hugging Face-named tensors, bound). The file size must
 * match the header exactly; dies "PATH: ..." otherwise. */
void llama2c_load(model *m, const char *path);

#endif
