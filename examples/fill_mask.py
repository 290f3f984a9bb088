"""Fill the mask in raw strings, then export the pipeline for TF Serving.

Takes a local fill-mask checkpoint folder, such as ``distilroberta-base`` or
``bert-base-uncased`` downloaded from the Hugging Face Hub
(``huggingface-cli download distilbert/distilroberta-base --local-dir distilroberta-base``),
prints the best tokens for a few texts, and exports the pipeline to ``--output``: export
reloads it in a fresh process that imports only TensorFlow and checks its answers.

    python examples/fill_mask.py --model distilroberta-base --output saved_models/fill_mask/1
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tensorflow as tf  # noqa: E402
import transformers  # noqa: E402

from tfpipe.export import export  # noqa: E402
from tfpipe.pipelines import pipeline  # noqa: E402

# {mask} is replaced by the checkpoint's mask token ([MASK], <mask>, ...).
TEMPLATES = (
    "Paris is the {mask} of France.",
    "I've been waiting for a HuggingFace {mask} my whole life.",
    "This text has no mask token.",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="local fill-mask checkpoint folder")
    parser.add_argument("--output", default="saved_models/fill_mask/1", help="NAME/VERSION")
    parser.add_argument("--top-k", type=int, default=3, help="tokens per text")
    args = parser.parse_args(argv)
    transformers.logging.set_verbosity_error()
    mask = transformers.AutoTokenizer.from_pretrained(args.model, local_files_only=True).mask_token
    texts = [template.format(mask=mask) for template in TEMPLATES]
    model = pipeline("fill-mask", args.model, top_k=args.top_k)
    outputs = model({"text": tf.constant(texts)})
    for row, text in enumerate(texts):
        masks = int(outputs["num_masks"][row])
        print(f"{text!r}: {masks} mask token(s)" + ("" if masks else ", no prediction"))
        if not masks:
            continue
        for token, score, sequence in zip(
            outputs["token_str"][row].numpy(),
            outputs["score"][row].numpy(),
            outputs["sequence"][row].numpy(),
            strict=True,
        ):
            print(f"  {score:.4f} {token.decode()!r}: {sequence.decode()!r}")
    exported = export(model, args.output, warmup_texts=texts, overwrite=True)
    print(f"exported {exported.path} ({len(exported.op_types)} core op types, no foreign ops)")


if __name__ == "__main__":
    main()
