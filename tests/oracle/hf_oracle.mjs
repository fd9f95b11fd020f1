// hf_oracle.mjs - compare pare's tokenizer.json tokenizer with Hugging Face's
// own JavaScript port of the tokenizers library (@huggingface/tokenizers, pinned in
// package.json, installed here by tools/install-deps).
//
// usage: node tests/oracle/hf_oracle.mjs --tool build/tests/pare-tok-lines --data ../shared/data
//            [--torture tests/oracle/unicode-torture.txt] [--bench ROUNDS]
//
// For Llama 3's and Qwen3's tokenizer folders (DATA/tokenizers/llama3, qwen3): the
// ids of WikiText-2 test and PTB valid, whole (one text each) and line by line;
// the Unicode torture file, whole and text by text (NUL-separated), without and
// with the special tokens; 2000 random strings of awkward atoms; the decoded text
// of the torture texts and of every WikiText line. Bytes reach the JavaScript side
// as Node reads them into strings (WHATWG: each maximal ill-formed subpart is one
// U+FFFD), which is what pare does with ill-formed input. Prints one line per
// comparison, "NAME: N texts, M differ", and the time each side took to encode
// WikiText-2 test whole; exits 1 on any difference, 2 on a missing prerequisite.
//
// --bench ROUNDS: only the whole-WikiText timings, pare and tokenizers.js
// alternating ROUNDS times (make bench).
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

let Tokenizer;
try {
  ({ Tokenizer } = await import("@huggingface/tokenizers"));
} catch (e) {
  console.error("hf_oracle: @huggingface/tokenizers is not installed in tests/oracle (run tools/install-deps)");
  process.exit(2);
}

const args = { tool: null, data: null, torture: null, bench: 0 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === "--tool") args.tool = process.argv[++i];
  else if (a === "--data") args.data = process.argv[++i];
  else if (a === "--torture") args.torture = process.argv[++i];
  else if (a === "--bench") args.bench = Number(process.argv[++i]);
  else {
    console.error(`hf_oracle: unknown argument '${a}'`);
    process.exit(2);
  }
}
if (!args.tool || !args.data) {
  console.error("usage: hf_oracle.mjs --tool PARE_TOK_LINES --data DATA [--torture FILE] [--bench ROUNDS]");
  process.exit(2);
}
const WIKI = path.join(args.data, "eval/wikitext-2-raw/wiki.test.raw");
const PTB = path.join(args.data, "eval/ptb/ptb.valid.txt");
for (const p of [args.tool, WIKI, PTB, args.torture].filter(Boolean)) {
  if (!fs.existsSync(p)) {
    console.error(`hf_oracle: missing ${p}`);
    process.exit(2);
  }
}

const decoder = new TextDecoder("utf-8", { fatal: false });
const asText = (buf) => decoder.decode(buf);

function loadJs(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const configPath = path.join(dir, "tokenizer_config.json");
  const config = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
  return new Tokenizer(json, config);
}

// Split a buffer into records ending at sep (a last record without one counts).
function records(buf, sep) {
  const out = [];
  let start = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === sep) {
      out.push(buf.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < buf.length) out.push(buf.subarray(start));
  return out;
}

// pare's ids of each record (pare-tok-lines), or its decoded bytes with --decode.
function pare(dir, recs, sep, extra = []) {
  const input = Buffer.concat(recs.flatMap((r) => [r, Buffer.from([sep])]));
  const opts = sep === 0 ? ["-0"] : [];
  const out = execFileSync(args.tool, [...extra, ...opts, dir], { input, maxBuffer: 1 << 30 }).toString();
  const lines = out.split("\n");
  lines.pop();
  if (lines.length !== recs.length) throw new Error(`pare-tok-lines gave ${lines.length} lines for ${recs.length} records`);
  return lines;
}

let checked = 0, failed = 0;

function report(name, n, bad, first) {
  checked += n;
  failed += bad;
  console.log(`${name}: ${n} texts, ${bad} differ`);
  if (first) console.error(first);
}

function compareIds(name, dir, js, recs, sep, special) {
  const got = pare(dir, recs, sep, special ? ["--bos"] : []);
  let bad = 0, first = null;
  recs.forEach((r, i) => {
    const want = js.encode(asText(r), { add_special_tokens: special }).ids.join(" ");
    if (got[i] !== want) {
      bad++;
      if (!first)
        first = `  MISMATCH ${name} #${i}: ${JSON.stringify(asText(r).slice(0, 200))}\n    tokenizers.js ${want.slice(0, 300)}\n    pare          ${got[i].slice(0, 300)}`;
    }
  });
  report(name, recs.length, bad, first);
}

function compareDecoded(name, dir, js, recs) {
  const got = pare(dir, recs, 0, ["--decode"]);
  let bad = 0, first = null;
  recs.forEach((r, i) => {
    const ids = js.encode(asText(r), { add_special_tokens: false }).ids;
    const want = ids.length ? js.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }) : "";
    const mine = asText(Buffer.from(got[i], "hex"));
    if (mine !== want) {
      bad++;
      if (!first) first = `  MISMATCH ${name} decoded #${i}: want ${JSON.stringify(want.slice(0, 200))}\n    pare ${JSON.stringify(mine.slice(0, 200))}`;
    }
  });
  report(name + " decoded", recs.length, bad, first);
}

// The whole of buf as one text: ids compared; each side's encoding time.
function compareWhole(name, dir, js, buf) {
  const run = execFileSync(args.tool, ["--whole", dir], { input: buf, maxBuffer: 1 << 30, stdio: ["pipe", "pipe", "pipe"] });
  const got = run.toString().trim();
  const text = asText(buf);
  const t0 = performance.now();
  const want = js.encode(text, { add_special_tokens: false }).ids;
  const tJs = (performance.now() - t0) / 1000;
  const same = got === want.join(" ");
  let first = null;
  if (!same) {
    const g = got.split(" ");
    const k = want.findIndex((id, i) => String(id) !== g[i]);
    first = `  MISMATCH ${name} whole: ${g.length} vs ${want.length} ids, first difference at id ${k}`;
  }
  report(name + " whole", 1, same ? 0 : 1, first);
  return tJs;
}

// Seconds pare-tok-lines --whole reports for encoding (its stderr: "... in X s").
function pareWholeSeconds(dir, buf) {
  const r = spawnSync(args.tool, ["--whole", dir], { input: buf, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`pare-tok-lines --whole failed: ${r.stderr}`);
  const m = / in ([0-9.]+) s/.exec(r.stderr.toString());
  return m ? Number(m[1]) : NaN;
}

// Random strings of atoms chosen to meet at awkward places.
function randomTexts(count, seed) {
  let x = BigInt(seed);
  const next = () => {
    x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
    return Number(x >> 33n);
  };
  const atoms = [" ", "  ", "\t", "\n", "\r\n", "a", "e", "the", " the", "I", "'s", "'S", "'ll", "1", "12", "123",
    "é", "e\u0301", "日", "本", "👍", "🏽", "\u200d", ".", ",", "!?", "...", "<|im_start|>", "<|begin_of_text|>",
    "<think>", "<|", "|>", "\u00a0", "\u3000", "ß", "İ", "ﬁ", "٣", "x", "Ω", "\ufffd"];
  const out = [];
  for (let i = 0; i < count; i++) {
    let s = "";
    const n = next() % 24;
    for (let k = 0; k < n; k++) s += atoms[next() % atoms.length];
    out.push(Buffer.from(s, "utf8"));
  }
  return out;
}

const folders = ["llama3", "qwen3"];
if (args.bench > 0) {
  const wiki = fs.readFileSync(WIKI);
  for (const name of folders) {
    const dir = path.join(args.data, "tokenizers", name);
    const js = loadJs(dir);
    const tp = [], tj = [];
    for (let r = 0; r < args.bench; r++) {
      tp.push(pareWholeSeconds(dir, wiki));
      const t0 = performance.now();
      js.encode(asText(wiki), { add_special_tokens: false });
      tj.push((performance.now() - t0) / 1000);
    }
    const med = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
    console.log(`tokenize ${name}: WikiText-2 test whole (${wiki.length} bytes), median of ${args.bench}: ` +
      `pare ${med(tp).toFixed(3)} s, tokenizers.js ${med(tj).toFixed(3)} s (${(med(tj) / med(tp)).toFixed(1)}x)`);
  }
  process.exit(0);
}

const wiki = fs.readFileSync(WIKI), ptb = fs.readFileSync(PTB);
const torture = args.torture ? fs.readFileSync(args.torture) : null;
for (const name of folders) {
  const dir = path.join(args.data, "tokenizers", name);
  const js = loadJs(dir);
  const tJs = compareWhole(`${name} wikitext-2 test`, dir, js, wiki);
  const tPare = pareWholeSeconds(dir, wiki);
  console.log(`${name} wikitext-2 test whole encode: pare ${tPare.toFixed(3)} s, tokenizers.js ${tJs.toFixed(3)} s`);
  compareWhole(`${name} ptb valid`, dir, js, ptb);
  const wikiLines = records(wiki, 10), ptbLines = records(ptb, 10);
  compareIds(`${name} wikitext-2 test lines`, dir, js, wikiLines, 10, false);
  compareIds(`${name} wikitext-2 test lines +special`, dir, js, wikiLines.slice(0, 300), 10, true);
  compareIds(`${name} ptb valid lines`, dir, js, ptbLines, 10, false);
  compareDecoded(`${name} wikitext-2 test lines`, dir, js, wikiLines.filter((r) => !r.includes(0)));
  if (torture) {
    const recs = records(torture, 0);
    compareWhole(`${name} unicode torture`, dir, js, torture);
    compareIds(`${name} unicode torture`, dir, js, recs, 0, false);
    compareIds(`${name} unicode torture +special`, dir, js, recs, 0, true);
    compareDecoded(`${name} unicode torture`, dir, js, recs);
  }
  compareIds(`${name} random`, dir, js, randomTexts(2000, 42), 0, false);
}
// Added-token flags the published files leave false: Qwen3's with lstrip and rstrip on
// <|im_start|>, rstrip on <|im_end|>, lstrip on <think>, and <tool_call> matched after
// normalization (normalized: true). (single_word is left out: the JavaScript port
// ignores it; tests/unit/test_split.c holds the library's own cases for it.)
{
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hf_oracle-"));
  const j = JSON.parse(fs.readFileSync(path.join(args.data, "tokenizers/qwen3/tokenizer.json"), "utf8"));
  const flags = { "<|im_start|>": { lstrip: true, rstrip: true }, "<|im_end|>": { rstrip: true },
    "<think>": { lstrip: true }, "<tool_call>": { normalized: true } };
  j.added_tokens = j.added_tokens.map((a) => ({ ...a, ...(flags[a.content] ?? {}) }));
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(j));
  const js = new Tokenizer(j, {});
  const texts = [" <|im_start|> user \n<|im_end|>  \n", "a  <think>  b", "x<tool_call>y <tool_call> z",
    "\t<|im_start|>\t<|im_start|>", "<|im_end|>", "  <think>", "a\u00a0<|im_start|>\u3000b"].map((t) => Buffer.from(t));
  compareIds("qwen3 with added-token flags", dir, js, texts.concat(randomTexts(2000, 7)), 0, false);
  if (torture) compareIds("qwen3 with added-token flags, unicode torture", dir, js, records(torture, 0), 0, false);
  fs.rmSync(dir, { recursive: true, force: true });
}
// Other pieces pare reads, in files made from Llama 3's and Qwen3's: GPT-2's ByteLevel
// pre-tokenizer with its own regex (with and without the prefix space), the NFKC and NFD
// normalizers, Split with Removed and with invert. (The JavaScript port reads Split's
// MergedWithPrevious, MergedWithNext and Contiguous as Isolated; tests/unit/test_split.c
// holds the library's own cases for them.)
{
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  const split = (pattern, behavior, invert) => ({ type: "Sequence", pretokenizers: [
    { type: "Split", pattern, behavior, invert }, byteLevel] });
  const variants = {
    "GPT-2 ByteLevel": (j) => { j.pre_tokenizer = { ...byteLevel, add_prefix_space: true, use_regex: true }; },
    "GPT-2 ByteLevel, no prefix space": (j) => { j.pre_tokenizer = { ...byteLevel, use_regex: true }; },
    "NFKC": (j) => { j.normalizer = { type: "NFKC" }; },
    "NFD": (j) => { j.normalizer = { type: "Sequence", normalizers: [{ type: "NFD" }] }; },
    "Split Removed": (j) => { j.pre_tokenizer = split({ Regex: "\\p{P}+" }, "Removed", false); },
    "Split invert": (j) => { j.pre_tokenizer = split({ Regex: "\\p{L}+|\\p{N}" }, "Removed", true); },
  };
  const sample = wiki.subarray(0, 200000);
  for (const base of folders)
    for (const [what, edit] of Object.entries(variants)) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hf_oracle-"));
      const j = JSON.parse(fs.readFileSync(path.join(args.data, "tokenizers", base, "tokenizer.json"), "utf8"));
      edit(j);
      fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(j));
      const js = new Tokenizer(j, {});
      compareWhole(`${base} with ${what}, wikitext-2 test (200 kB)`, dir, js, sample);
      if (torture) compareIds(`${base} with ${what}, unicode torture`, dir, js, records(torture, 0), 0, false);
      fs.rmSync(dir, { recursive: true, force: true });
    }
}
console.log(`hf_oracle: ${checked} comparisons, ${failed} differ`);
process.exit(failed ? 1 : 0);
