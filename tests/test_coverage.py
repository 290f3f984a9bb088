"""docs/components.md's coverage table against the installed `tokenizers` and tfpipe's code.

The table is the one list of what tfpipe compiles, refuses (and why) or ignores. These tests
keep it true: every component type and option of the installed `tokenizers` is listed, types
marked supported are exactly those of the section's registry, and every refusal listed
happens, with an UnsupportedComponentError naming the type.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from tfpipe import DetokenizerLayer, TokenizerLayer
from tfpipe.tokenization import UnsupportedComponentError
from tfpipe.tokenization.decoders import DECODERS
from tfpipe.tokenization.pipeline import CHILDREN, REGISTRIES

DOCS = Path(__file__).resolve().parents[1] / "docs" / "components.md"
TABLE_HEADING = "## Every component of `tokenizers`"
STATUSES = ("supported", "refused", "ignored")
# Each section's module and base class: its component types are the base's subclasses.
SECTIONS = {
    "normalizer": (normalizers, normalizers.Normalizer),
    "pre_tokenizer": (pre_tokenizers, pre_tokenizers.PreTokenizer),
    "model": (models, models.Model),
    "post_processor": (processors, processors.PostProcessor),
    "decoder": (decoders, decoders.Decoder),
}
# Constructor arguments of the types that take required ones; the others build with none.
EXAMPLE_ARGS = {
    ("normalizer", "Prepend"): ("▁",),
    ("normalizer", "Replace"): (" ", "▁"),
    ("normalizer", "Precompiled"): (b"\0\0\0\0",),
    ("normalizer", "Sequence"): ([],),
    ("pre_tokenizer", "CharDelimiterSplit"): ("x",),
    ("pre_tokenizer", "Split"): ("x", "isolated"),
    ("pre_tokenizer", "Sequence"): ([],),
    ("post_processor", "BertProcessing"): (("[SEP]", 1), ("[CLS]", 0)),
    ("post_processor", "RobertaProcessing"): (("</s>", 1), ("<s>", 0)),
    ("post_processor", "TemplateProcessing"): ("$A", "$A $B"),
    ("post_processor", "Sequence"): ([],),
    ("decoder", "Replace"): ("▁", " "),
    ("decoder", "Strip"): ("x",),
    ("decoder", "Sequence"): ([],),
}
BYTES = {f"<0x{byte:02X}>": byte for byte in range(256)}


def _unigram_past_packing_limit() -> models.Model:
    """Just past the limit with pieces of up to 2¹⁴ characters: a much longer piece makes
    tokenizers' trie deep enough to overflow the stack when it is dropped."""
    longest = 2**14
    pieces = [("<unk>", 0.0), ("a" * longest, -1.0)]
    pieces += [(f"p{i}", -2.0) for i in range(2**31 // (longest + 1) + 1 - len(pieces))]
    return models.Unigram(pieces, 0, False)


# The components of each refused option row (section, type, option cell of the table).
REFUSALS = {
    ("normalizer", "Replace", "`pattern`: `Regex` with back-references, look-behind and the "
     "other constructs listed there"): lambda: [
        normalizers.Replace(Regex(source), "b") for source in (r"(a)\1", "(?<=a)b", r"a\Z")
    ],
    ("pre_tokenizer", "Sequence",
     "`pretokenizers`: more than 15 class-table split steps"): lambda: [
        pre_tokenizers.Sequence([pre_tokenizers.Digits()] * 16),
    ],
    ("pre_tokenizer", "Split", "`pattern`: `Regex` with back-references, look-behind and the "
     "other constructs listed there"): lambda: [
        pre_tokenizers.Split(Regex(source), "isolated") for source in (r"a\Z", r"(a)\1", "(?<=a)b")
    ],
    ("pre_tokenizer", "FixedLength", "`length`: 0"): lambda: [pre_tokenizers.FixedLength(0)],
    ("model", "BPE", "`dropout`"): lambda: [models.BPE({"a": 0}, [], dropout=0.1)],
    ("model", "BPE", "`unk_token`: not in the vocabulary"): lambda: [
        models.BPE({"a": 0}, [], unk_token="[UNK]"),
    ],
    ("model", "BPE", "`byte_fallback`: without all 256 `<0xXX>` tokens, or with a prefix or "
     "suffix"): lambda: [
        models.BPE({"a": 0}, [], byte_fallback=True),
        models.BPE({**BYTES, "a": 256}, [], byte_fallback=True, continuing_subword_prefix="##"),
    ],
    ("model", "Unigram", "`vocab`: (longest piece + 1) × pieces ≥ 2³¹"): lambda: [
        _unigram_past_packing_limit(),
    ],
    ("model", "Unigram", "`unk_id`: `null`"): lambda: [models.Unigram([("a", 0.0)], None, False)],
    ("model", "Unigram", "`byte_fallback`: without all 256 `<0xXX>` tokens"): lambda: [
        models.Unigram([("<unk>", 0.0), ("a", -1.0)], 0, True),
    ],
    ("model", "WordPiece", "`unk_token`: not in the vocabulary"): lambda: [
        models.WordPiece({"a": 0}, unk_token="[UNK]"),
    ],
    ("post_processor", "TemplateProcessing", "`single`, `pair`: a sequence placed twice"): lambda: [
        processors.TemplateProcessing(single="$A $A", pair="$A $B"),
        processors.TemplateProcessing(single="$A", pair="$A $B $B"),
        processors.TemplateProcessing(
            single="$A [SEP] $A", pair="$A $B", special_tokens=[("[SEP]", 3)]
        ),
    ],
}


@dataclass(frozen=True)
class Row:
    """One row of the table; `option` is empty on the type's own row."""

    section: str
    type: str
    option: str
    status: str
    notes: str

    @property
    def options(self) -> list[str]:
        """The option names the row covers: those in backticks before any ':'."""
        return re.findall(r"`([^`]+)`", self.option.split(":", 1)[0])


def docs_rows() -> list[Row]:
    """The table's rows, as written under TABLE_HEADING."""
    text = DOCS.read_text(encoding="utf-8")
    lines = text[text.index(TABLE_HEADING) :].splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[header + 2 :]:  # after the header and its rule
        if not line.startswith("|"):
            break
        section, kind, option, status, notes = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append(Row(section, kind.strip("`"), option, status, notes))
    return rows


ROWS = docs_rows()
TYPE_ROWS = {(row.section, row.type): row for row in ROWS if not row.option}


def ids(keys: list[tuple]) -> list[str]:
    return ["-".join(key) for key in keys]


def installed_types() -> list[tuple[str, str]]:
    """(section, type) of every component class of the installed tokenizers."""
    return sorted(
        (section, name)
        for section, (module, base) in SECTIONS.items()
        for name, cls in vars(module).items()
        if inspect.isclass(cls) and issubclass(cls, base) and cls is not base
    )


def registry(section: str) -> set[str]:
    """The types tfpipe compiles in `section` (a Sequence is a container of them)."""
    if section == "decoder":
        return set(DECODERS) | {"Sequence"}
    types = set(REGISTRIES.get(section, ()))
    return types | {"Sequence"} if section in CHILDREN else types


def example(section: str, kind: str):
    module, _ = SECTIONS[section]
    return getattr(module, kind)(*EXAMPLE_ARGS.get((section, kind), ()))


def json_options(section: str, kind: str) -> set[str]:
    """The fields tokenizer.json holds for the type, as tokenizers writes it."""
    return set(json.loads(example(section, kind).__getstate__())) - {"type"}


def build(section: str, component, folder: Path, layer=TokenizerLayer):
    """`layer` (TokenizerLayer, or DetokenizerLayer for decoders).from_pretrained on a
    tokenizer.json holding `component` in `section` (and a tiny WordPiece model, unless it
    is the model)."""
    model = models.WordPiece({"[UNK]": 0, "a": 1, "##a": 2}, unk_token="[UNK]")
    tokenizer = Tokenizer(component if section == "model" else model)
    if section != "model":
        setattr(tokenizer, section, component)
    folder.mkdir(exist_ok=True)
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    if layer is DetokenizerLayer:
        return DetokenizerLayer.from_pretrained(path)
    return TokenizerLayer.from_pretrained(path, padding=False)


def check_refused(section: str, kind: str, component, folder: Path) -> None:
    layer = DetokenizerLayer if section == "decoder" else TokenizerLayer
    with pytest.raises(UnsupportedComponentError, match=re.escape(repr(kind))) as error:
        build(section, component, folder, layer)
    assert error.value.section == section


# --- The table lists what is installed -----------------------------------------------------------


def test_the_table_lists_every_installed_type_and_no_other():
    documented = {(row.section, row.type) for row in ROWS}
    assert set(TYPE_ROWS) == documented, "types with option rows but no row of their own"
    assert len(TYPE_ROWS) == sum(not row.option for row in ROWS), "a type listed twice"
    assert sorted(documented) == installed_types()
    assert {row.status for row in ROWS} <= set(STATUSES)


@pytest.mark.parametrize(("section", "kind"), installed_types(), ids=ids(installed_types()))
def test_the_table_lists_every_option(section, kind):
    rows = [row for row in ROWS if (row.section, row.type) == (section, kind)]
    assert {name for row in rows for name in row.options} == json_options(section, kind)


# --- Statuses agree with the code ----------------------------------------------------------------


@pytest.mark.parametrize(("section", "kind"), installed_types(), ids=ids(installed_types()))
def test_a_type_is_supported_exactly_when_its_registry_has_it(section, kind):
    row = TYPE_ROWS[section, kind]
    if kind in registry(section):
        assert row.status == "supported"
    else:
        assert row.status == "refused" and row.notes, "a refused type needs its reason"
    options = {row.status for row in ROWS if (row.section, row.type) == (section, kind)}
    if row.status != "supported":
        assert options == {row.status}, "a refused or ignored type cannot support an option"


REFUSED_TYPES = [key for key, row in TYPE_ROWS.items() if row.status == "refused"]


def test_every_refused_type_is_refused_at_build(tmp_path):
    """One test over the list, which may be empty (every type of the pinned `tokenizers`
    compiles today)."""
    for index, (section, kind) in enumerate(REFUSED_TYPES):
        check_refused(section, kind, example(section, kind), tmp_path / str(index))


# Refused option rows of types that are not refused as a whole.
REFUSED_OPTIONS = [
    (row.section, row.type, row.option)
    for row in ROWS
    if row.option and row.status == "refused"
    and TYPE_ROWS[row.section, row.type].status != "refused"
]


def test_every_refused_option_has_refusal_cases():
    assert sorted(REFUSALS) == sorted(REFUSED_OPTIONS)


@pytest.mark.parametrize("key", REFUSED_OPTIONS, ids=ids(REFUSED_OPTIONS))
def test_a_refused_option_is_refused_at_build(key, tmp_path):
    section, kind, _ = key
    for index, component in enumerate(REFUSALS[key]()):
        check_refused(section, kind, component, tmp_path / str(index))


def test_decoders_leave_encoding_alone(tmp_path):
    """A tokenizer.json with every decoder (the refused CTC too: it only decodes) builds a
    TokenizerLayer, which encodes as the reference does."""
    kinds = [kind for section, kind in installed_types() if section == "decoder"]
    every = decoders.Sequence([example("decoder", kind) for kind in kinds])
    layer = build("decoder", every, tmp_path)
    reference = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    assert layer(["a aa b"])["input_ids"].to_list() == [reference("a aa b")["input_ids"]]
