#!/usr/bin/env bats
# PyTorch .bin folders (torch.save's zip checkpoints, written by pare-mkmodel
# --format bin) load as the safetensors folder of the same seed: ChatGLM-6B in fp16
# in three shards with its per-layer rotary_emb.inv_freq buffers, ChatGLM2 with its
# one transformer.rotary_pos_emb.inv_freq, LLaMA in every dtype; the pipeline runs
# from a .bin folder. The archives themselves are read back with Python's standard
# zipfile and pickle (no torch) and compared with the safetensors bytes.
load helper

glm() { # TYPE ARGS...: a tiny ChatGLM-6B or ChatGLM2 in fp16 with the tok512 tokenizer
    local type="$1"
    shift
    pare-mkmodel --model-type "$type" --dim 16 --layers 3 --heads 4 --kv-heads 2 --ffn 24 --vocab 512 --qkv-bias \
        --dtype f16 --seed 7 --tokenizer "$TOK" "$@"
}

ppl() {
    pare-eval -q -m "$1" --ppl "$T/t.txt" --limit 4 --json | jq '.metrics[0].value'
}

groups() {
    pare-discover -q -m "$1" | pare show | jq -c 'select(.t == "group")'
}

@test "pytorch_bin: ChatGLM-6B in fp16 .bin shards with inv_freq buffers: its safetensors folder's fingerprint, perplexity and groups" {
    need_data
    head -c 6000 "$STORIES" > "$T/t.txt"
    fs=$(glm chatglm -o "$T/st")
    fb=$(glm chatglm --format bin --inv-freq --shards 4 -o "$T/bin")
    [ "$fs" = "$fb" ]
    # three shards (the embedding and LM head outweigh the rest), the buffers in two of them
    ls "$T/bin"/pytorch_model-0000{1,2,3}-of-00003.bin
    ! ls "$T/bin"/*.safetensors
    jq -e '[.weight_map | to_entries[] | select(.key | endswith(".attention.rotary_emb.inv_freq"))]
           | length == 3 and (map(.value) | unique | length) == 2' "$T/bin/pytorch_model.bin.index.json"
    # the fingerprint of the discover stream read from the .bin folder (another reader than pare-mkmodel's load)
    pare-discover -q -m "$T/bin" | pare show | head -1 | jq -e --arg f "$fs" '.model.fingerprint == $f'
    [ "$(groups "$T/st")" = "$(groups "$T/bin")" ]
    [ "$(ppl "$T/st")" = "$(ppl "$T/bin")" ]
}

@test "pytorch_bin: ChatGLM2 in two .bin shards with transformer.rotary_pos_emb.inv_freq: its safetensors folder's fingerprint, perplexity and groups" {
    need_data
    head -c 6000 "$STORIES" > "$T/t.txt"
    fs=$(glm chatglm2 -o "$T/st")
    fb=$(glm chatglm2 --format bin --inv-freq --shards 2 -o "$T/bin")
    [ "$fs" = "$fb" ]
    jq -e '.weight_map | has("transformer.rotary_pos_emb.inv_freq")' "$T/bin/pytorch_model.bin.index.json"
    [ "$(groups "$T/st")" = "$(groups "$T/bin")" ]
    [ "$(ppl "$T/st")" = "$(ppl "$T/bin")" ]
}

@test "pytorch_bin: discover | score | prune from a ChatGLM-6B .bin folder gives the safetensors folder's pruned model" {
    need_data
    head -c 12000 "$STORIES" > "$T/t.txt"
    glm chatglm -o "$T/st" >/dev/null
    glm chatglm --format bin --inv-freq --shards 2 -o "$T/bin" >/dev/null
    for m in st bin; do
        pare-discover -q -m "$T/$m" -o "$T/g-$m.pare"
        pare-score -q -m "$T/$m" --calib "$T/t.txt" -o "$T/s-$m.pare" "$T/g-$m.pare"
        pare-prune -q -m "$T/$m" --ratio 0.5 --layers 0-2 -o "$T/p-$m.pare" "$T/s-$m.pare"
        pare-discover -q -m "$T/p-$m.pare" | pare show | head -1 | jq -r '.model.fingerprint' > "$T/fp-$m"
    done
    cmp "$T/fp-st" "$T/fp-bin"
    pare show "$T/p-bin.pare" | head -1 | jq -e '.config.num_attention_heads == 2'
}

@test "pytorch_bin: LLaMA .bin in f32, f16, bf16 (sharded, tied): torch.save's layout, read by Python's zipfile and pickle, the safetensors bytes" {
    for d in f32 f16 bf16; do
        fs=$(pare-mkmodel --dim 32 --layers 2 --ffn 48 --dtype $d --seed 3 --tied --shards 2 -o "$T/st-$d")
        fb=$(pare-mkmodel --dim 32 --layers 2 --ffn 48 --dtype $d --seed 3 --tied --shards 2 --format bin --inv-freq -o "$T/bin-$d")
        [ "$fs" = "$fb" ]
        "$PY" - "$T/st-$d" "$T/bin-$d" "$d" <<'PY'
import glob, json, os, pickle, struct, sys, zipfile
st, bn, dt = sys.argv[1:]
cls = {"f32": "FloatStorage", "f16": "HalfStorage", "bf16": "BFloat16Storage"}[dt]
want = {}                                   # name -> bytes, from the safetensors shards
for f in glob.glob(st + "/*.safetensors"):
    b = open(f, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    for k, v in json.loads(b[8:8 + n]).items():
        if k != "__metadata__":
            want[k] = b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]

class Stub:
    def __init__(self, name): self.name = name
    def __call__(self, *a): return (self.name,) + a

class Reader(pickle.Unpickler):
    def find_class(self, module, name):
        assert (module, name) in {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
                                  ("torch", cls)}, (module, name)
        return __import__("collections").OrderedDict if name == "OrderedDict" else Stub(name)
    def persistent_load(self, pid):
        return pid

index = json.load(open(bn + "/pytorch_model.bin.index.json"))["weight_map"]
got = {}
for f in sorted(glob.glob(bn + "/pytorch_model-*.bin")):
    z = zipfile.ZipFile(f)
    assert z.testzip() is None                                  # every CRC
    arch = os.path.basename(f)[:-4]
    names = z.namelist()
    assert names[:2] == [arch + "/data.pkl", arch + "/byteorder"] and names[-1] == arch + "/version", names
    assert z.read(arch + "/version") == b"3\n" and z.read(arch + "/byteorder") == b"little"
    raw = open(f, "rb").read()
    for i in z.infolist():                                      # stored, data aligned to 64
        nl, xl = struct.unpack("<HH", raw[i.header_offset + 26:i.header_offset + 30])
        assert i.compress_type == 0 and (i.header_offset + 30 + nl + xl) % 64 == 0
    sd = Reader(z.open(arch + "/data.pkl")).load()
    assert type(sd).__name__ == "OrderedDict"
    for k, (fn, (tag, c, key, loc, numel), off, shape, stride, grad, hooks) in sd.items():
        assert fn == "_rebuild_tensor_v2" and tag == "storage" and loc == "cpu" and off == 0 and grad is False
        assert stride == ((shape[1], 1) if len(shape) == 2 else (1,)) and numel == eval("*".join(map(str, shape)))
        assert index[k] == os.path.basename(f)
        got[k] = z.read(arch + "/data/" + key)
inv = {k for k in got if k.endswith(".self_attn.rotary_emb.inv_freq")}
assert len(inv) == 2, inv
for k in inv:
    del got[k]
assert got == want, sorted(set(got) ^ set(want))
PY
    done
}

@test "pytorch_bin: pare-mkmodel --format takes safetensors or bin" {
    run pare-mkmodel --format gguf -o "$T/x"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--format: expected safetensors or bin"* ]]
    pare-mkmodel --help | grep -q -- '--inv-freq'
}
