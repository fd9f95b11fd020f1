#!/usr/bin/python3
"""tokenizer_oracle.py - compare pare's SentencePiece tokenizer with python3-sentencepiece.

usage: tokenizer_oracle.py --tool build/tests/pare-tok-lines --data ../shared/data

For the Llama-2 tokenizer.model: every line of WikiText-2 test (CR dropped), every
line of PTB valid, odd inputs (empty, spaces, tabs, newlines, accents, CJK, emoji,
invalid UTF-8), the same with BOS, and the whole WikiText-2 test text as one string
(lines joined by "\\n\\n"), timed. Then small BPE models trained here with other
settings (nmt_nfkc charsmap, extra-whitespace removal, user-defined pieces, no
byte fallback, no dummy prefix, whitespace as suffix, UNUSED pieces) on TinyStories,
WikiText and the odd inputs. Exits 1 on any difference, 2 on a missing prerequisite.
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

    def compare(self, name, sp, model, records, sep=b"\n", bos=False):
        got = pare_encode(self.tool, model, records, sep, ["--bos"] if bos else [])
        bad = 0
        for rec, ids in zip(records, got):
            want = sp.encode(rec, add_bos=bos)
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

    def info(self, name, sp, model):
        out = subprocess.run([self.tool, "--info", model], stdout=subprocess.PIPE, check=True).stdout.split()
        got = [int(x) for x in out[:4]]
        want = [sp.vocab_size(), sp.bos_id(), sp.eos_id(), sp.unk_id()]
        self.checked += 1
        if got != want:
            self.failed += 1
            print(f"  MISMATCH {name} vocab/bos/eos/unk: sentencepiece {want}, pare {got}", file=sys.stderr)

    def suite(self, name, sp, model, texts):
        self.info(name, sp, model)
        self.compare(name, sp, model, texts)
        self.compare(name + " odd", sp, model, ODD)
        self.compare(name + " odd+bos", sp, model, ODD, bos=True)
        self.compare(name + " newlines", sp, model, ODD_WITH_NEWLINES, sep=b"\0")
        self.compare(name + " random", sp, model, fuzz(2000))


def set_piece_types(model_bytes, new_type):
    """A ModelProto with the type of some pieces changed: new_type maps index -> type."""
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
        if field == 1 and index in new_type:
            sub = b"".join(r for f, r, _ in fields(payload) if f != 3) + b"\x18" + put_varint(new_type[index])
            raw = b"\x0a" + put_varint(len(sub)) + sub
        if field == 1:
            index += 1
        out += raw
    return bytes(out)


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

    print(f"tokenizer_oracle: {o.checked} comparisons, {o.failed} differ")
    sys.exit(1 if o.failed else 0)


if __name__ == "__main__":
    main()
