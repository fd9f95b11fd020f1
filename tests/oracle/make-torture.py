# make-torture.py - writes unicode-torture.txt (python3 tests/oracle/make-torture.py > tests/oracle/unicode-torture.txt):
# texts for comparing tokenizers, separated by NUL bytes; see README.md.
import sys
R = []
def add(*xs):
    for x in xs:
        R.append(x.encode() if isinstance(x, str) else x)

add("unicode-torture.txt: texts for comparing tokenizers, separated by NUL bytes (see tests/oracle/README.md)")
# scripts
add("Ελληνικά: Γειά σου Κόσμε, ΑΒΓΔ αβγδ ΐΰ", "Русский: Привет, мир! Ёжик в тумане.", "Հայերեն Բարեւ",
    "עברית: שָׁלוֹם עוֹלָם", "العربية: مَرْحَبًا بِالْعَالَم ١٢٣٤", "हिन्दी: नमस्ते दुनिया, क्षत्रिय", "বাংলা: আমার সোনার বাংলা",
    "ไทย: สวัสดีครับ ภาษาไทยไม่มีช่องว่าง", "தமிழ்: வணக்கம் உலகம்", "ქართული ენა", "한국어: 안녕하세요, 세계!",
    "日本語: こんにちは、世界。カタカナとひらがな、漢字。", "中文：你好，世界！繁體字與简体字。", "ኢትዮጵያ ሰላም", "བོད་ཡིག",
    "ខ្មែរ សួស្តី", "ᠮᠣᠩᠭᠣᠯ ᠬᠡᠯᠡ", "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ", "𝔾𝕠𝕠𝕕 𝕞𝕠𝕣𝕟𝕚𝕟𝕘 𝐀𝐁𝐂 𝒜ℬ𝒞", "𐌀𐌁𐌂 Old Italic 𐍈 Gothic",
    "Tiếng Việt: Xin chào thế giới, Phở bò", "Ångström Øresund façade naïve résumé coöperate", "ǅungla ǈ ǋ ﬁﬂ ﬀ ß ẞ",
    "İstanbul ıi Iİ", "ＦＵＬＬＷＩＤＴＨ ｶﾀｶﾅ ㍻ ㌀")
# emoji
add("emoji 👍 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 😀😀😀 1️⃣ #️⃣ ❤️ ✔︎", "🤖🧠💡🔥🚀 ☃ ☺ ♀️ 🫠", "text😀text 😀, 😀.")
# combining marks (NFC composes or reorders several of these)
add("e\u0301 a\u0300 o\u0308 n\u0303 A\u030a c\u0327", "a\u0323\u0307 a\u0307\u0323 s\u0323\u0307 q\u0307\u0323",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334a\u0336l\u0489g\u0353o\u0362",
    "\u0301 starts with a mark", "x\u20dd \u00e9\u0301 \u1e9b\u0323", "\u212b \u2126 \u00c5 \u03a9 \u1e69", "ﾊﾞ ﾊﾟ か\u3099")
# digits and numbers
add("1 12 123 1234 12345 123456 1234567890123", "3.14159 2,718 1e10 -42 +7 0x1F 0b1010 1_000_000",
    "٠١٢٣٤٥٦٧٨٩ ०१२३४५ ０１２３４５ ²³¹ ½ ¾ ⅓ Ⅻ ⅻ ① ⑳ 𝟘𝟙𝟚", "in 1999, 2000 and 2024-12-31T23:59:59Z",
    "$1,234.56 €99 £3 ¥1000 12% 100°C")
# contractions
add("it's I'M we're THEY'VE you'll he'd She'S 'tis O'Neill rock'n'roll", "don't won't can't isn't y'all",
    "it’s curly ‘quotes’ “double”", "'s 's's ''s '", "x's x'S x'Ll x'RE")
# whitespace runs, tabs, CR/LF
add("two  spaces   three    four     five", "  leading", "trailing  ", " ", "  ", "\t", "\t\ttabs\t\tand  spaces \t ",
    "a\u00a0b\u00a0\u00a0c", "em\u2003space ideographic\u3000space thin\u2009space", "line\u2028sep para\u2029sep",
    "cr\rlf\ncrlf\r\nlfcr\n\r", "\r\n\r\n\r\n", "\n\n\n", "a \r\n b", "end\r", "\r", "x\n \n y", "  \n  ",
    "\t\n\t", "para one.\n\n\nPara two.\r\n\r\nPara three.", "v\x0bt\x0cf")
# controls, NUL
add(b"nul\x00inside", b"\x00", b"ctl\x01\x02\x1b[31mred\x1b[0m\x7f", b"bell\x07")
# special and added tokens written in text
add("<|begin_of_text|>Hello<|end_of_text|>", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|im_sta <|im_start <|endoftext|><|endoftext|>x", "<think>\nhmm\n</think>\n\nanswer", "<tool_call>{}</tool_call>",
    "<|eot_id|><|start_header_id|>system<|end_header_id|>", "<|reserved_special_token_5|>", "<s> </s> <unk> <pad>",
    "a<|endoftext|>b <|fim_prefix|>c<|fim_middle|>")
# invalid UTF-8 (read into a string by the maximal-subpart rule)
add(b"\xff", b"\x80abc", b"abc\xc3", b"\xc3\x28", b"\xe2\x82", b"\xe2\x82 x", b"\xf0\x9f\x98", b"\xed\xa0\x80 surrogate",
    b"\xc0\xaf overlong", b"\xf4\x90\x80\x80 too big", b"\xfe\xff\xfe", b"ok \xff\xfe mixed caf\xc3\xa9 \x80",
    b"\xf0\x9f\x98\x80\xf0\x9f", b"\xe0\x80\x80\xe0\xa0")
# long and mixed
add("a" * 300, " " * 300, "ab" * 200, "9" * 100, "!" * 50 + "?" * 50, "😀" * 40, "日本" * 80,
    "https://example.org/path?q=1&r=2#frag user@example.com",
    "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n\tif x != 0:\n\t\tpass\n",
    '{"key": "value", "n": 12345, "list": [true, false, null]}', "C:\\path\\to\\file.txt and /usr/bin/env",
    "The quick brown fox jumps over the lazy dog. " * 10, "ALLCAPS lowercase MiXeD CamelCaseWord snake_case_word kebab-case")
sys.stdout.buffer.write(b"\x00".join(R))
