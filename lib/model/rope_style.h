/* rope_style.h - the two row orders of a rotary head: which channels rotate
 * together. ROPE_HALF pairs channel i with i + hd/2 (Hugging Face's
 * rotate_half), ROPE_INTERLEAVED pairs 2i with 2i + 1 (Meta's checkpoints,
 * llama2.c, llama.cpp). A config says which its q/k rows are in (rope_layout.h
 * converts between them); the kernels rotate either. */
#ifndef PARE_ROPE_STYLE_H
#define PARE_ROPE_STYLE_H

enum rope_style { ROPE_HALF, ROPE_INTERLEAVED };

#endif
