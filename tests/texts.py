"""Deterministic multilingual and adversarial test texts for tokenizer parity."""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Callable
from pathlib import Path

SEED = 20240601
# The shared test data (real tokenizers, the course corpus), cloned beside the repo.
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"

SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]")

# Every code point with the Unicode White_Space property, plus U+180E (whitespace until
# Unicode 6.3) and U+200B, which look like spaces but are not.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u180e\u200b"
)
CONTROLS = "".join(map(chr, range(0x20))) + "\x7f" + "".join(map(chr, range(0x80, 0xA0)))
ZERO_WIDTH = "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u034f"
PUNCTUATION = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "¡¿«»‹›“”‘’„‚…–—―·•†‡‰′″§¶©®™°±×÷、。，．！？：；「」『』【】《》〈〉〔〕（）・ー～"
    "؟،؛।॥฿๏"
)
DIGITS = "0123456789٠١٢٣٤٥٦٧٨٩०१२३४५६७८९０１２３４５６７８９²³¹⁰⁴½¼¾ⅫⅧ①②⑩"

EMOJI = (
    "😀", "😂", "🤗", "❤️", "👍", "👍🏽", "👍🏿", "🙏🏻", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🏴‍☠️",
    "🇺🇸", "🇯🇵", "🇩🇪", "🇰🇷", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🧑🏾‍🚀", "👁️‍🗨️", "☺︎", "✌️", "#️⃣",
    "1️⃣", "🔥", "🚀", "🥲", "🫠", "🪿", "🤌", "💯", "🎉", "✨",
)

# Letters, syllables and signs per script, as (start, end) inclusive ranges or literal strings.
SCRIPTS: dict[str, tuple[tuple[int, int] | str, ...]] = {
    "ascii": ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",),
    "latin_ext": ((0xC0, 0xFF), (0x100, 0x17F), (0x180, 0x24F), "ßẞİıŉǅǈǋ"),
    "german": ("äöüÄÖÜßẞ", "abcdefghijklmnopqrstuvwxyz"),
    "turkish": ("İıŞşĞğÇçÖöÜü", "abcdefghijklmnoprstuvyz"),
    "lithuanian": ("ąčęėįšųūžĄČĘĖĮŠŲŪŽ", "i̇̀", "i̇́", "Ì", "Í", "Ĩ", "abcdegijklmnoprstuvyz"),
    "vietnamese": (
        "ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ",
        "ĂÂĐÊÔƠƯẦẨẪẤẬỀỂỄẾỆỒỔỖỐỘỜỞỠỚỢỪỬỮỨỰ",
        "ê̄ệ̣",
    ),
    "korean": ((0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3131, 0x318E)),
    "japanese": (
        (0x3041, 0x3096), (0x30A1, 0x30FA), "ーゝゞヽヾ", (0xFF66, 0xFF9F), (0x4E00, 0x4FFF)
    ),
    "chinese": ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF)),
    "cjk_rare": ((0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2F800, 0x2FA1F), (0x30000, 0x3134F)),
    "thai": ((0x0E01, 0x0E5B),),
    "arabic": ((0x0621, 0x064A), (0x064B, 0x065F), (0x0660, 0x06FF), (0xFB50, 0xFDFF),
               (0xFE70, 0xFEFC)),
    "hebrew": ((0x05D0, 0x05EA), (0x05B0, 0x05C7), (0xFB1D, 0xFB4F)),
    "devanagari": ((0x0900, 0x097F),),
    "cyrillic": ((0x0400, 0x04FF),),
    "greek": ((0x0370, 0x03FF), (0x1F00, 0x1FFF), "ςσΣ"),
    "combining": ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF),
                  (0xFE20, 0xFE2F)),
    "fullwidth": ((0xFF01, 0xFF5E), (0xFFE0, 0xFFEE)),
    "math": ((0x1D400, 0x1D7FF), (0x2100, 0x214F), (0x2200, 0x22FF)),
    "private_use": ((0xE000, 0xF8FF), (0xF0000, 0xF00FF), (0x10FF00, 0x10FFFD)),
    "specials": ("\ufffd\ufffe\uffff\U0001fffe\U0010ffff\ufff9\ufffa\ufffb\ufffc",),
    "symbols": ((0x2190, 0x21FF), (0x2500, 0x257F), (0x2600, 0x26FF), (0x1F300, 0x1F5FF),
                (0x1F900, 0x1F9FF)),
}

_WORD_LISTS = {
    "ascii": (
        "the quick brown fox jumps over lazy dog tokenizer hello world unaffable running "
        "TensorFlow HuggingFace BERT isn't don't can't O'Neil e-mail state-of-the-art"
    ),
    "korean": "안녕하세요 세계 한국어 토크나이저 문장 테스트 서울특별시 감사합니다",
    "japanese": "こんにちは 世界 東京都 カタカナ ひらがな 日本語の文章 ｶﾞｷﾞ ﾊﾟﾝ",
    "chinese": "你好 世界 中华人民共和国 北京 分词器 測試 繁體字 𠀀𠀁 𪚥",
    "thai": "สวัสดีครับ ภาษาไทย ประเทศไทย กรุงเทพมหานคร ขอบคุณ",
    "arabic": "مرحبا بالعالم اللُّغَةُ العَرَبِيَّة السلام عليكم ﷺ ﻻ",
    "hebrew": "שָׁלוֹם עולם עִבְרִית ירושלים ﬣ",
    "hindi": "नमस्ते दुनिया हिन्दी भाषा क़ ज़्यादा",
    "russian": "Привет мир Русский язык Ёлка ёжик ЩУКА Москва",
    "greek": "Καλημέρα κόσμε ΣΑΣ ΟΔΥΣΣΕΥΣ ὀδυσσεύς ς σοφός ΐ ΰ ᾼ ᾳ",
    "german": "Straße STRASSE GROẞ Maß Fußgängerübergänge Äpfel Öl Übermut",
    "turkish": "İstanbul ıspanak DİYARBAKIR ılık İi Iı",
    "lithuanian": "Lietuvių kalba ąžuolas čiuožykla į̇̃ i̇̀ Ĩ",
    "vietnamese": "Tiếng Việt Nguyễn Thị Bích Ngọc người Việt Nam quốc ngữ Ệ̄ ệ",
}
WORDS = {script: words.split() for script, words in _WORD_LISTS.items()}

TEMPLATES = (
    "{w} {w} {w}.",
    "{W}, {w}! {w}?",
    "{w}{p}{w}{p}{w}",
    "{s}{w}{s}",
    "{w}{s} {w}",
    "a{s}b",
    "{w} {s} {w}",
    "[{w}] ({w}) {{{w}}}",
    "{n} {w} {n}.{n}",
    "https://{a}.example.com/{a}/{n}?q={w}&lang={a}#{a}",
    "mailto:{a}.{a}+tag@{a}.co.uk",
    "def {a}(x, y={n}):\n    return x ** 2 + y  # {w}",
    "for (int i = 0; i < {n}; ++i) {{ {a}[i] = {a}[i-1] * 2; }}",
    "SELECT {a}, COUNT(*) FROM {a} WHERE id >= {n} GROUP BY 1;",
    "# {W}\n\n* **{w}** _{w}_ `{a}()` [{w}](https://{a}.org)\n> {w}",
    "| {w} | {n} |\n|---|---|\n| {w} | {n} |",
    "<div class=\"{a}\">{w}</div>",
    "{e}{e} {w} {e}",
    "{w}{e}{w}",
    "{W}{W}{W}",
    "{n}{n}{n}",
    "{w}\t{w}\n{w}\r\n{w}",
)

EDGE_CASES = (
    "",
    " ",
    "   ",
    "\t\n",
    WHITESPACE,
    WHITESPACE[::-1] + "x" + WHITESPACE,
    CONTROLS,
    "a" + CONTROLS + "b",
    "\x00",
    "a\x00b",
    "\x85",
    "a\x85b",
    "\x7f\x7f",
    ZERO_WIDTH,
    "a\u200bb\u200cc\u200dd\u2060e\ufefff",
    "\ufeffhello",
    "non\xa0breaking\u202fspace\u2007here",
    "line\u2028separator\u2029paragraph",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "[PAD]",
    "[UNK]",
    "[CLS] hello [SEP] world [SEP]",
    "a[MASK]b",
    "a [MASK] b",
    "a[MASK] b",
    "[MASK][MASK][MASK]",
    "[mask]",
    "[ MASK]",
    "[MASK ]",
    "[[MASK]]",
    "[MA SK]",
    "[MASK].",
    ",[SEP],",
    "hello[UNK]world",
    "[PAD][PAD] pad",
    "x[CLS]",
    "ΣΑΣ",
    "ΟΔΥΣΣΕΥΣ ΟΔΥΣΣΕΥΣ.",
    "ς σ Σ ΣΣ σς",
    "Straße ẞ ß STRASSE",
    "İstanbul ıi Iİ",
    "i̇̀ i̇́ i̇̃ Ì Í Ĩ",
    "Tiếng Việt: Nguyễn Thị Bích Ngọc",
    "Tie\u0302\u0301ng Vie\u0323\u0302t",
    "Tie\u0301\u0302ng Vie\u0302\u0323t",
    "e\u0301\u0323\u0302\u0300 o\u0328\u0304 a\u030a\u0301",
    "\u0301\u0302 starts with marks",
    "\u0301",
    "a" + "\u0301" * 50,
    "Å Å Å",
    "ﬁ ﬂ ﬀ ǅ Ǆ ǆ",
    "ＡＢＣ　ｄｅｆ　１２３！",
    "𝐀𝐁𝐂 𝒳𝒴𝒵 𝟘𝟙𝟚",
    "𠀀𠀁𠀂 𪚥 𰀀",
    "\ue000\uf8ff\U000f0000\U0010fffd",
    "\ufffd",
    "\ufffd\ufffd a\ufffdb",
    "\u0378\u0379\u0380 \U000e0080 \U0003fffd",
    "😀😂🤗",
    "👨‍👩‍👧‍👦 family",
    "👍🏽👍🏿🙏🏻",
    "🇺🇸🇯🇵🇩🇪",
    "🏳️‍🌈 🏴‍☠️",
    "#️⃣ 1️⃣",
    "!!!???...",
    "...",
    "—–-",
    "$100.00 50% 3.14159 1,000,000 -42 1e-10 12:30 2024-01-01",
    "２０２４年１２月３１日",
    "१२३ ٤٥٦ ½ ² Ⅻ ①",
    "https://huggingface.co/docs/transformers/index?foo=bar&baz=1#section",
    "user.name+tag@example.co.uk",
    "def f(x):\n    return x**2\n",
    "```python\nimport tensorflow as tf\n```",
    "**bold** _italic_ `code` [link](http://x.y)",
    "a" * 99,
    "a" * 100,
    "a" * 101,
    "b" * 150,
    "x" * 300 + " ok",
    "한" * 99,
    "한" * 100,
    "한" * 101,
    "é" * 100,
    "é" * 101,
    "e\u0301" * 60,
    "e\u0301" * 100,
    "Привет" * 20,
    "ß" * 101,
    "İ" * 60,
    "supercalifragilisticexpialidocious" * 4,
    "unaffable",
    "HeLLo WoRLD",
    "hello    world",
    "   leading and trailing   ",
    "\n\n\nnewlines\n\n",
)


def _alphabet(spec: tuple[tuple[int, int] | str, ...]) -> str:
    chars = []
    for part in spec:
        if isinstance(part, str):
            chars.append(part)
        else:
            start, end = part
            chars.append("".join(chr(c) for c in range(start, end + 1)))
    return "".join(chars)


ALPHABETS = {name: _alphabet(spec) for name, spec in SCRIPTS.items()}
COMBINING_DIACRITICS = "".join(chr(c) for c in range(0x300, 0x370))
UNASSIGNED = "".join(
    chr(c) for c in range(0x300, 0x30000) if unicodedata.category(chr(c)) == "Cn"
)


class TextGenerator:
    """Random multilingual texts from a fixed seed: same seed, same texts."""

    def __init__(self, seed: int = SEED, inject: tuple[str, ...] = SPECIAL_TOKENS):
        self.rng = random.Random(seed)
        self.inject = inject
        self.kinds: tuple[tuple[Callable[[], str], int], ...] = (
            (self.template, 30),
            (self.script_words, 20),
            (self.script_chars, 15),
            (self.code_points, 10),
            (self.marks_and_spacing, 8),
            (self.long_word, 3),
            (self.long_text, 1),
            (self.mixed, 13),
        )

    def word(self) -> str:
        rng = self.rng
        if rng.random() < 0.6:
            return rng.choice(WORDS[rng.choice(list(WORDS))])
        return self.random_word(rng.choice(list(ALPHABETS)))

    def random_word(self, script: str, max_len: int = 12) -> str:
        alphabet = ALPHABETS[script]
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(1, max_len)))

    def sep(self) -> str:
        r = self.rng.random()
        if r < 0.7:
            return " "
        if r < 0.85:
            return self.rng.choice(WHITESPACE + ZERO_WIDTH)
        if r < 0.95:
            return self.rng.choice(PUNCTUATION)
        return self.rng.choice(CONTROLS)

    def template(self) -> str:
        rng = self.rng
        fields = {
            "w": self.word,
            "W": lambda: self.word().upper(),
            "a": lambda: self.random_word("ascii", 8).lower(),
            "n": lambda: "".join(rng.choice(DIGITS[:10]) for _ in range(rng.randint(1, 6))),
            "p": lambda: rng.choice(PUNCTUATION),
            "s": lambda: rng.choice(self.inject),
            "e": lambda: rng.choice(EMOJI),
        }
        out, chars = [], iter(rng.choice(TEMPLATES))
        for ch in chars:
            if ch == "{":
                key = next(chars)
                if key == "{":
                    out.append("{")
                    continue
                next(chars)
                out.append(fields[key]())
            elif ch == "}":
                next(chars)
                out.append("}")
            else:
                out.append(ch)
        return "".join(out)

    def script_words(self) -> str:
        scripts = self.rng.sample(list(WORDS), self.rng.randint(1, 3))
        parts = []
        for _ in range(self.rng.randint(1, 25)):
            parts.append(self.rng.choice(WORDS[self.rng.choice(scripts)]))
            parts.append(self.sep())
        return "".join(parts).strip(" ") if self.rng.random() < 0.5 else "".join(parts)

    def script_chars(self) -> str:
        scripts = self.rng.sample(list(ALPHABETS), self.rng.randint(1, 2))
        parts = []
        for _ in range(self.rng.randint(1, 12)):
            parts.append(self.random_word(self.rng.choice(scripts)))
            parts.append(self.sep())
        return "".join(parts)

    def code_points(self) -> str:
        rng = self.rng
        chars = []
        for _ in range(rng.randint(1, 40)):
            r = rng.random()
            if r < 0.5:
                c = rng.randint(0, 0xFFFF)
            elif r < 0.7:
                c = rng.randint(0, 0x10FFFF)
            elif r < 0.85:
                c = ord(rng.choice(UNASSIGNED))
            else:
                c = ord(rng.choice(WHITESPACE + CONTROLS + ZERO_WIDTH))
            chars.append(chr(c) if not 0xD800 <= c <= 0xDFFF else "\ufffd")
        return "".join(chars)

    def marks_and_spacing(self) -> str:
        """Base letters with stacked combining marks in arbitrary order, odd spacing, emoji."""
        rng = self.rng
        parts = []
        for _ in range(rng.randint(1, 10)):
            base = rng.choice("aeiouAEIOUnyzcsσΣιυωαиеё한あ")
            marks = "".join(rng.choice(COMBINING_DIACRITICS) for _ in range(rng.randint(0, 4)))
            text = base + marks
            if rng.random() < 0.5:
                text = unicodedata.normalize(rng.choice(("NFC", "NFD", "NFKC", "NFKD")), text)
            parts.append(text)
            parts.append(rng.choice((" ", "", rng.choice(EMOJI), rng.choice(WHITESPACE))))
        return "".join(parts)

    def long_word(self) -> str:
        rng = self.rng
        script = rng.choice(("ascii", "latin_ext", "cyrillic", "korean", "thai", "arabic", "greek"))
        length = rng.choice((99, 100, 101, 102, 150, 250))
        return "".join(rng.choice(ALPHABETS[script]) for _ in range(length))

    def long_text(self) -> str:
        return " ".join(self.script_words() for _ in range(self.rng.randint(20, 200)))

    def mixed(self) -> str:
        kinds = [kind for kind, _ in self.kinds if kind not in (self.mixed, self.long_text)]
        parts = [self.rng.choice(kinds)() for _ in range(self.rng.randint(2, 4))]
        if self.rng.random() < 0.5:
            parts.insert(self.rng.randint(0, len(parts)), self.rng.choice(self.inject))
        return self.rng.choice(("", " ", "\n")).join(parts)

    def text(self) -> str:
        kinds, weights = zip(*self.kinds, strict=True)
        return self.rng.choices(kinds, weights)[0]()


def generate_texts(
    n: int = 20_000, seed: int = SEED, inject: tuple[str, ...] = SPECIAL_TOKENS
) -> list[str]:
    """``n`` texts: every hand-written edge case first, then seeded random draws.

    ``inject`` are strings (special or added tokens) spliced into some texts.
    """
    gen = TextGenerator(seed, inject)
    texts = list(EDGE_CASES)
    texts += [f"{a}{t}{b}" for t in inject for a, b in (("", ""), ("x", "y"), (" ", " "))]
    while len(texts) < n:
        texts.append(gen.text())
    return texts[:n]


def hand_written_count(inject: tuple[str, ...] = SPECIAL_TOKENS) -> int:
    """How many hand-written texts ``generate_texts`` puts before its random draws."""
    return len(EDGE_CASES) + 3 * len(inject)


def course_texts(shared_dir: Path) -> list[str]:
    """The ``text`` of every line of ``shared/corpus/course.jsonl``."""
    with open(shared_dir / "corpus" / "course.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]
