#!/usr/bin/python3
"""tokenizer_oracle.py - compare pare's SentencePiece tokenizer with python3-sentencepiece.

usage: tokenizer_oracle.py --tool build/tests/pare-tok-lines --data ../shared/data

For the Llama-2 tokenizer.model: every line of WikiText-2 test (CR dropped), every
line of PTB valid, odd inputs (empty, spaces, tabs, newlines, accents, CJK, emoji,
invalid UTF-8), the same with BOS, and the whole WikiText-2 test text as one string
(lines joined by "\\n\\n"), timed. Then small BPE and unigram models trained here
with other settings (nmt_nfkc charsmap, extra-whitespace removal, user-defined
pieces, no byte fallback, no dummy prefix, whitespace as suffix, UNUSED pieces;
unigram models also with scores rounded to make ties and shifted above zero to
make user-defined pieces compete) on TinyStories, WikiText and the odd inputs.
Last the ChatGLM modes on model folders made here: ChatGLM-6B (ice_text.model
with the <n>, <|tab|>, <|blank_N|> and special pieces, unigram and BPE) against
the substitutions of its tokenization_chatglm.py written out below plus
python3-sentencepiece, ids and decoded text; ChatGLM2 (tokenizer.model, specials
appended). Exits 1 on any difference, 2 on a missing prerequisite.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

try:
    import sentencepiece as spm
except ImportError:
    print("tokenizer_oracle: python3-sentencepiece is not installed", file=sys.stderr)
    sys.exit(2)

MAX_PARE_WHOLE_SECONDS = 5.0

ODD = [
    b"", b" ", b"  ", b"   ", b"\t", b"a", b" a", b"a ", b"  leading spaces", b"trailing spaces   ",
    b"multiple   spaces   inside", b" = Robert Boulter = ", b"\ttab\tseparated\tvalues\t", b"a\tb \t c",
    b"\x0b\x0c vertical tab and form feed", b"a\x00b", b"\x00",
    "café naïve résumé Ångström Øresund façade".encode(), "e\u0301 combining acute".encode(),
    "日本語のテキストです。".encode(), "中文分词测试，标点符号！".encode(), "한국어 텍스트".encode(),
    "Привет, мир".encode(), "Γειά σου Κόσμε".encode(), "مرحبا بالعالم".encode(), "שלום עולם".encode(),
    "สวัสดีครับ".encode(), "नमस्ते दुनिया".encode(),
    "emoji 👍 👍🏽 👨‍👩‍👧 🇫🇷 😀😀😀".encode(), "∑ x² ≤ ∞ — “quotes” ‘single’ … ©®™".encode(),
    "ＦＵＬＬＷＩＤＴＨ ｶﾀｶﾅ ﬁ ligature ① ㍻".encode(), "\u00a0no-break\u3000ideographic space".encode(),
    "zero\u200bwidth\u200dj".encode(), "▁ literal U+2581 ▁▁".encode(), "\ufffd replacement".encode(),
    b"<s> </s> <unk> <0x41> <pad>", b"<sep>x Lily foo bar x", b"\xff", b"\x80abc", b"abc\xc3",
    b"\xc3\x28", b"\xe2\x82", b"\xe2\x82 x", b"\xf0\x9f\x98", b"\xed\xa0\x80 surrogate",
    b"\xc0\xaf overlong", b"\xf4\x90\x80\x80 too big", b"\xfe\xff\xfe", b"ok \xff\xfe mixed caf\xc3\xa9 \x80",
    b"a" * 1000, b" " * 100, b"ab" * 500, b"1234567890" * 10, b"!!!???...,,,;;;", b"\r", b"a\rb\r",
    b"The quick brown fox jumps over the lazy dog. " * 20,
]
ODD_WITH_NEWLINES = [r for r in ODD if b"\0" not in r] + [
    b"\n", b"\n\n", b"line one\nline two", b"\r\n", b" \n ", b"para\n\n = heading = \n"]


def fuzz(count, seed=42):
    """Random strings of spaces, letters, pieces, multi-byte characters and bad bytes."""
    import random
    rng = random.Random(seed)
    atoms = [b" ", b"  ", b"\t", b"a", b"e", b"t", b"he", b"the", b" the", b"Lily", b".", b",", b"'s", b"1",
             "é".encode(), "日".encode(), "👍".encode(), "▁".encode(), "\ufffd".encode(), "ﬁ".encode(),
             "Ａ".encode(), b"\x80", b"\xc3", b"\xe6\x97", b"\xff", b"<s>", b"<sep>", b"foo bar", b"\x01"]
    return [b"".join(rng.choice(atoms) for _ in range(rng.randrange(30))) for _ in range(count)]


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def pare_encode(tool, model, records, sep=b"\n", extra=()):
    for r in records:
        assert sep not in r
    args = [tool] + list(extra) + (["-0"] if sep == b"\0" else []) + [model]
    data = b"".join(r + sep for r in records)
    out = subprocess.run(args, input=data, stdout=subprocess.PIPE, check=True).stdout
    lines = out.decode().split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(records), (len(lines), len(records))
    return [[int(x) for x in line.split()] for line in lines[:-1]]


class Oracle:
    def __init__(self, tool):
        self.tool = tool
        self.checked = 0
        self.failed = 0

    def compare(self, name, sp, model, records, sep=b"\n", bos=False, want_fn=None):
        """want_fn(rec, bos): the expected ids; default sp.encode. bos "prompt": pare-tok-lines --prompt."""
        got = pare_encode(self.tool, model, records, sep, ["--prompt"] if bos == "prompt" else ["--bos"] if bos else [])
        bad = 0
        for rec, ids in zip(records, got):
            want = want_fn(rec, bos) if want_fn else sp.encode(rec, add_bos=bos)
            self.checked += 1
            if ids != want:
                bad += 1
                if bad <= 5:
                    print(f"  MISMATCH {name}: {rec[:200]!r}\n    sentencepiece {want[:40]}"
                          f"\n    pare          {ids[:40]}", file=sys.stderr)
                    print(f"    pieces {[sp.id_to_piece(i) for i in want[:20]]}"
                          f" vs {[sp.id_to_piece(i) if 0 <= i < sp.vocab_size() else i for i in ids[:20]]}",
                          file=sys.stderr)
        self.failed += bad
        print(f"{name}: {len(records)} texts, {bad} differ")

    def info(self, name, sp, model, want=None):
        out = subprocess.run([self.tool, "--info", model], stdout=subprocess.PIPE, check=True).stdout.split()
        got = [int(x) for x in out[:4]] + [out[4].decode()]
        want = want or [sp.vocab_size(), sp.bos_id(), sp.eos_id(), sp.unk_id(), "sentencepiece"]
        self.checked += 1
        if got != want:
            self.failed += 1
            print(f"  MISMATCH {name} vocab/bos/eos/unk: sentencepiece {want}, pare {got}", file=sys.stderr)

    def suite(self, name, sp, model, texts, want_fn=None, info=None, sep=b"\n"):
        self.info(name, sp, model, info)
        self.compare(name, sp, model, texts, sep=sep, want_fn=want_fn)
        self.compare(name + " odd", sp, model, ODD, want_fn=want_fn)
        self.compare(name + " odd+bos", sp, model, ODD, bos=True, want_fn=want_fn)
        self.compare(name + " newlines", sp, model, ODD_WITH_NEWLINES, sep=b"\0", want_fn=want_fn)
        self.compare(name + " random", sp, model, fuzz(2000), want_fn=want_fn)

    def decoded(self, name, model, records, want_fn):
        """pare's decoded text of each record's ids (pare-tok-lines --decode) against want_fn(rec)."""
        args = [self.tool, "--decode", "-0", model]
        out = subprocess.run(args, input=b"".join(r + b"\0" for r in records), stdout=subprocess.PIPE,
                             check=True).stdout.decode().split("\n")[:-1]
        bad = 0
        for rec, hexed in zip(records, out):
            got, want = bytes.fromhex(hexed), want_fn(rec)
            self.checked += 1
            if got != want:
                bad += 1
                if bad <= 5:
                    print(f"  MISMATCH {name} decoded: {rec[:100]!r}\n    want {want[:100]!r}\n"
                          f"    pare {got[:100]!r}", file=sys.stderr)
        self.failed += bad
        print(f"{name} decoded: {len(records)} texts, {bad} differ")


def set_piece_types(model_bytes, new_type, new_score=None):
    """A ModelProto with the type and score of some pieces changed: new_type and
    new_score map index -> type, score."""
    import struct
    new_score = new_score or {}
    def varint(buf, i):
        shift = value = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value, i

    def put_varint(v):
        out = bytearray()
        while True:
            b = v & 0x7F
            v >>= 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)

    def fields(buf):
        i = 0
        while i < len(buf):
            start = i
            tag, i = varint(buf, i)
            wire = tag & 7
            if wire == 0:
                _, i = varint(buf, i)
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            elif wire == 2:
                n, i = varint(buf, i)
                i += n
            else:
                raise ValueError("wire type %d" % wire)
            yield tag >> 3, buf[start:i], buf[i - n:i] if wire == 2 else None

    out = bytearray()
    index = 0
    for field, raw, payload in fields(model_bytes):
        if field == 1 and (index in new_type or index in new_score):
            old = list(fields(payload))
            sub = b"".join(r for f, r, _ in old if f not in (2, 3))
            score = struct.pack("<f", new_score[index]) if index in new_score else \
                next((r[1:] for f, r, _ in old if f == 2), struct.pack("<f", 0.0))
            ptype = new_type.get(index, next((r[1] for f, r, _ in old if f == 3), 1))
            sub += b"\x15" + score + b"\x18" + put_varint(ptype)
            raw = b"\x0a" + put_varint(len(sub)) + sub
        if field == 1:
            index += 1
        out += raw
    return bytes(out)


def unigram_edits(o, tmp, base_path, texts):
    """A trained unigram model with pieces changed: UNUSED pieces; UNUSED single
    characters (an <unk> then competes with the longer pieces holding them);
    scores rounded to halves (ties everywhere: the leftmost start wins); scores
    shifted so the best is 1.5 (a user-defined piece of L bytes scores 1.5 L - 0.1);
    scores scaled to near zero (a user-defined piece, -0.1, loses to pieces that
    spell it)."""
    base = open(base_path, "rb").read()
    sp = spm.SentencePieceProcessor(model_file=base_path)
    normal = [i for i in range(sp.vocab_size()) if not (sp.is_unknown(i) or sp.is_control(i) or sp.is_byte(i))]
    scores = {i: sp.get_score(i) for i in normal}
    top = max(scores.values())
    edits = {
        "unused": ({i: 5 for i in normal if len(sp.id_to_piece(i)) >= 2 and i % 3 == 0}, {}),
        "unused chars": ({i: 5 for i in normal if sp.id_to_piece(i) in ("e", "o", "\u2581", "s")}, {}),
        "ties": ({}, {i: round(s * 2) / 2 for i, s in scores.items()}),
        "tiny scores": ({}, {i: s / 1000 for i, s in scores.items()}),
        "shifted": ({}, {i: s - top + 1.5 for i, s in scores.items()}),
    }
    for name, (types, new_scores) in edits.items():
        model = os.path.join(tmp, f"unigram {name}.model")
        with open(model, "wb") as f:
            f.write(set_piece_types(base, types, new_scores))
        o.suite("unigram " + name, spm.SentencePieceProcessor(model_file=model), model, texts)


# ChatGLM-6B's tokenization_chatglm.py (THUDM/chatglm-6b), SPTokenizer: the text
# form its SentencePiece model sees, and the way back.
GLM_MAX_BLANK = 80


def glm_preprocess(text):
    text = text.replace(b"\n", b"<n>")
    text = text.replace(b"\t", b"<|tab|>")
    for i in range(GLM_MAX_BLANK, 1, -1):
        text = text.replace(b" " * i, b"<|blank_%d|>" % i)
    return text


def glm_postprocess(text):
    text = text.replace("<n>", "\n")
    text = text.replace("<|tab|>", "\t")
    for i in range(2, GLM_MAX_BLANK + 1):
        text = text.replace("<|blank_%d|>" % i, " " * i)
    return text


GLM_SPECIALS = ["[MASK]", "[gMASK]", "[sMASK]", "<unused_0>", "<sop>", "<eop>", "<ENC>", "<dBLOCK>"]
GLM2_SPECIALS = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop"]
GLM_CONFIG = "configs/chatglm-6b/tokenizer_config.json"  # in the data folder

GLM_ODD = [b" " * k for k in (1, 2, 3, 79, 80, 81, 82, 159, 160, 161, 200)] + [
    b"def f(x):\n    return x\n\n\tif x:\n\t\tpass", b"a" + b" " * 85 + b"b", b"\t \t  \t   ", b"x \n y",
    b"<n> literal <|tab|> <|blank_3|> <|blank_81|> <|blank_1|>", b"[gMASK] <sop> <eop> [MASK]",
    "列1\t列2\n  縮進".encode(), b"tail  ", b"  head", b"\n\n\n", b"\r\n  \r\n"]


def chatglm(o, tmp, data, stories, texts):
    """ChatGLM-6B and ChatGLM2 folders: tokenizer_config.json + the model file."""
    import shutil
    records = texts[:1000] + ODD_WITH_NEWLINES + GLM_ODD + [r.replace(b"\0", b"") for r in fuzz(1000, seed=7)]
    glm_user = ["<n>", "<|tab|>"] + ["<|blank_%d|>" % i for i in range(2, GLM_MAX_BLANK + 1)] + GLM_SPECIALS
    for kind in ("unigram", "bpe"):
        name = f"chatglm-6b ({kind})"
        folder = os.path.join(tmp, name)
        os.mkdir(folder)
        spm.SentencePieceTrainer.train(input=stories, model_prefix=os.path.join(folder, "ice_text"),
                                       model_type=kind, vocab_size=900, user_defined_symbols=glm_user,
                                       pad_id=3, byte_fallback=True, remove_extra_whitespaces=False,
                                       minloglevel=2, num_threads=4)
        shutil.copy(os.path.join(data, GLM_CONFIG), os.path.join(folder, "tokenizer_config.json"))
        os.remove(os.path.join(folder, "ice_text.vocab"))
        sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "ice_text.model"))
        prefix = [sp.piece_to_id("[gMASK]"), sp.piece_to_id("<sop>")]

        def want(rec, bos, sp=sp, prefix=prefix):  # a prompt: build_inputs_with_special_tokens
            ids = sp.encode(glm_preprocess(rec))
            return ids + prefix if bos == "prompt" else (prefix if bos else []) + ids

        def text(rec, sp=sp):  # decode(..., skip_special_tokens=True)
            ids = [i for i in sp.encode(glm_preprocess(rec)) if sp.id_to_piece(i) not in GLM_SPECIALS + ["<pad>"]]
            return glm_postprocess(sp.decode(ids)).encode()

        info = [sp.vocab_size(), sp.piece_to_id("<sop>"), sp.piece_to_id("<eop>"), sp.unk_id(), "chatglm"]
        o.suite(name, sp, folder, records, want_fn=want, info=info, sep=b"\0")
        o.compare(name + " +bos", sp, folder, records[-300:], sep=b"\0", bos=True, want_fn=want)
        o.compare(name + " prompt", sp, folder, records[-300:], sep=b"\0", bos="prompt", want_fn=want)
        # decoding: valid UTF-8 the model can spell (no <unk>), less the dummy prefix's space
        spelled = [r for r in records if valid_utf8(r) and sp.unk_id() not in want(r, False)]
        o.decoded(name, folder, spelled, lambda r: (b" " if r else b"") + text(r))

    name = "chatglm2"
    folder = os.path.join(tmp, name)
    os.mkdir(folder)
    spm.SentencePieceTrainer.train(input=stories, model_prefix=os.path.join(folder, "tokenizer"), model_type="bpe",
                                   vocab_size=700, byte_fallback=True, minloglevel=2, num_threads=4)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        f.write('{"name_or_path": "THUDM/chatglm2-6b", "remove_space": false, "do_lower_case": false,\n'
                ' "tokenizer_class": "ChatGLMTokenizer"}\n')
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
    n = sp.vocab_size()
    special = {t: n + i for i, t in enumerate(GLM2_SPECIALS)}
    want2 = lambda rec, bos: ([special["[gMASK]"], special["sop"]] if bos else []) + sp.encode(rec)  # noqa: E731
    o.suite(name, sp, folder, records, sep=b"\0", want_fn=want2,
            info=[n + len(GLM2_SPECIALS), special["sop"], sp.eos_id(), sp.unk_id(), "chatglm2"])
    o.compare(name + " prompt", sp, folder, records[-300:], sep=b"\0", bos="prompt", want_fn=want2)


def valid_utf8(b):
    try:
        b.decode("utf-8")
        return b"\0" not in b
    except UnicodeDecodeError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, help="pare-tok-lines")
    ap.add_argument("--data", required=True, help="the shared data folder")
    args = ap.parse_args()

    llama = os.path.join(args.data, "tokenizers/llama2/tokenizer.model")
    wiki = os.path.join(args.data, "eval/wikitext-2-raw/wiki.test.raw")
    ptb = os.path.join(args.data, "eval/ptb/ptb.valid.txt")
    stories = os.path.join(args.data, "text/tinystories/tinystories_train_sample.txt")
    for p in (llama, wiki, ptb, stories):
        if not os.path.exists(p):
            print(f"tokenizer_oracle: missing {p}", file=sys.stderr)
            sys.exit(2)

    o = Oracle(args.tool)
    sp = spm.SentencePieceProcessor(model_file=llama)
    wiki_lines, ptb_lines, story_lines = read_lines(wiki), read_lines(ptb), read_lines(stories)
    o.info("llama2", sp, llama)
    o.compare("llama2 wikitext-2 test lines", sp, llama, wiki_lines)
    o.compare("llama2 ptb valid lines", sp, llama, ptb_lines)
    o.compare("llama2 wikitext-2 test lines +bos", sp, llama, wiki_lines[:300], bos=True)
    o.compare("llama2 odd", sp, llama, ODD)
    o.compare("llama2 odd +bos", sp, llama, ODD, bos=True)
    o.compare("llama2 odd with newlines", sp, llama, ODD_WITH_NEWLINES, sep=b"\0")
    o.compare("llama2 random", sp, llama, fuzz(5000))

    # The whole test set as one string, the way perplexity evaluation sees it.
    whole = b"\n\n".join(wiki_lines)
    t0 = time.perf_counter()
    want = sp.encode(whole)
    t_sp = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = subprocess.run([args.tool, "--whole", llama], input=whole, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=True)
    t_run = time.perf_counter() - t0
    got = [int(x) for x in run.stdout.split()]
    report = run.stderr.decode().strip()
    t_pare = float(report.split(" in ")[-1].split()[0])
    o.checked += 1
    same = got == want
    if not same:
        o.failed += 1
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        print(f"  MISMATCH whole text: {len(got)} vs {len(want)} ids, first difference at id {first}",
              file=sys.stderr)
    print(f"llama2 whole wikitext-2 test ({len(whole)} bytes, {len(want)} tokens): "
          f"{'same' if same else 'DIFFERENT'}; pare encode {t_pare:.3f} s (process {t_run:.2f} s), "
          f"sentencepiece {t_sp:.3f} s")
    if t_pare > MAX_PARE_WHOLE_SECONDS:
        o.failed += 1
        print(f"  TOO SLOW: pare took {t_pare:.2f} s, limit {MAX_PARE_WHOLE_SECONDS} s", file=sys.stderr)

    # Models trained here exercise what the Llama model does not use.
    texts = story_lines[:1500] + wiki_lines[:1500]
    with tempfile.TemporaryDirectory() as tmp:
        variants = {
            "nfkc+user": dict(vocab_size=400, user_defined_symbols=["<sep>", "Lily", "foo bar", "\u2581x"]),
            "identity+bytes+noprefix": dict(vocab_size=700, normalization_rule_name="identity",
                                            byte_fallback=True, add_dummy_prefix=False,
                                            remove_extra_whitespaces=False),
            "nfkc_cf+suffix": dict(vocab_size=350, normalization_rule_name="nmt_nfkc_cf",
                                   treat_whitespace_as_suffix=True),
            "identity+keep-spaces": dict(vocab_size=500, normalization_rule_name="identity",
                                         remove_extra_whitespaces=False, split_by_whitespace=False),
        }
        for name, opts in variants.items():
            prefix = os.path.join(tmp, name)
            spm.SentencePieceTrainer.train(input=stories, model_prefix=prefix, model_type="bpe",
                                           minloglevel=2, num_threads=4, **opts)
            model = prefix + ".model"
            o.suite(name, spm.SentencePieceProcessor(model_file=model), model, texts)

        # UNUSED pieces: merged into, then split back (bpe_model.cc resegment).
        base = open(os.path.join(tmp, "nfkc+user.model"), "rb").read()
        sp_base = spm.SentencePieceProcessor(model_file=os.path.join(tmp, "nfkc+user.model"))
        unused = {i: 5 for i in range(sp_base.vocab_size())
                  if sp_base.is_unknown(i) is False and not sp_base.is_control(i)
                  and len(sp_base.id_to_piece(i)) >= 2 and i % 3 == 0}
        model = os.path.join(tmp, "unused.model")
        with open(model, "wb") as f:
            f.write(set_piece_types(base, unused))
        o.suite(f"unused ({len(unused)} pieces)", spm.SentencePieceProcessor(model_file=model), model, texts)

        # Unigram models: the same settings, Viterbi instead of merges.
        for name, opts in variants.items():
            prefix = os.path.join(tmp, "unigram " + name)
            spm.SentencePieceTrainer.train(input=stories, model_prefix=prefix, model_type="unigram",
                                           minloglevel=2, num_threads=4, **opts)
            model = prefix + ".model"
            o.suite("unigram " + name, spm.SentencePieceProcessor(model_file=model), model, texts)
        unigram_edits(o, tmp, os.path.join(tmp, "unigram nfkc+user.model"), texts)
        chatglm(o, tmp, args.data, stories, texts)

    print(f"tokenizer_oracle: {o.checked} comparisons, {o.failed} differ")
    sys.exit(1 if o.failed else 0)


if __name__ == "__main__":
    main()
