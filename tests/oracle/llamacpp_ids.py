#!/usr/bin/python3
"""llamacpp_ids.py - the token ids llama.cpp's own tokenizer gives a text, through the one
llama.cpp tool this project has (../shared/tools/llama.cpp/llama-perplexity).

usage: llamacpp_ids.py LLAMA_PERPLEXITY MODEL.gguf TEXT [CTX]

llama-perplexity tokenizes the whole text (with BOS when the GGUF says add_bos_token) and,
asked to save its logits (--kl-divergence-base FILE), writes "_logits_", n_ctx, n_vocab,
n_chunk and then the ids of the first n_chunk * n_ctx tokens before it evaluates anything
(tools/perplexity/perplexity.cpp). FILE is a FIFO here: the ids are read from it and the
program is stopped. The tail that fills no whole chunk of CTX tokens (default 128) is not
written: append a tail of at least CTX tokens to cover a text. Prints the ids on one line.
Exits 1 when llama-perplexity writes no ids (for a text under 2 * CTX tokens it refuses)."""
import os
import signal
import struct
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    tool, model, text = sys.argv[1:4]
    ctx = int(sys.argv[4]) if len(sys.argv) == 5 else 128
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "logits")
        os.mkfifo(fifo)
        log = open(os.path.join(tmp, "log"), "w+")
        proc = subprocess.Popen([tool, "-m", model, "-f", text, "-c", str(ctx), "-b", str(ctx), "-t", "1",
                                 "--kl-divergence-base", fifo], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        ids = None
        try:
            with open(fifo, "rb") as f:  # blocks until llama-perplexity opens it
                head = f.read(12)
                if len(head) == 12 and head[:8] == b"_logits_":
                    rest = f.read(8)
                    if len(rest) == 8:
                        n_vocab, n_chunk = struct.unpack("<ii", rest)
                        n_ctx = struct.unpack("<i", head[8:])[0]
                        data = f.read(4 * n_chunk * n_ctx)
                        if len(data) == 4 * n_chunk * n_ctx:
                            ids = struct.unpack(f"<{n_chunk * n_ctx}i", data)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        if ids is None:
            log.seek(0)
            print("llamacpp_ids: llama-perplexity wrote no ids:\n" + log.read()[-2000:], file=sys.stderr)
            sys.exit(1)
        print(" ".join(map(str, ids)))


if __name__ == "__main__":
    main()
