"""Named entities from raw strings, exported for TF Serving.

Builds the token-classification pipeline of a local checkpoint folder (a Hub checkpoint such
as dslim/bert-base-NER, downloaded first with ``huggingface-cli download dslim/bert-base-NER
--local-dir bert-base-NER``), prints the entities of a few texts, grouped into words and
B-/I- spans as transformers' ``pipeline("ner", aggregation_strategy="first")`` groups them,
and exports the pipeline, which export verifies in a fresh TensorFlow-only process.

    python examples/token_classification.py --model bert-base-NER --output saved_models/ner/1
"""

from __future__ import annotations

import argparse
import json
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

TEXTS = [
    "My name is Wolfgang and I live in Berlin.",
    "Sylvain works at Hugging Face in Brooklyn.",
]
# Long texts are read whole, in windows of the model's length sharing this many tokens.
STRIDE = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="local token-classification checkpoint")
    parser.add_argument("--output", default="saved_models/ner/1", help="saved_models/NAME/VERSION")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    model = pipeline("ner", args.model, aggregation_strategy="first", stride=STRIDE)
    outputs = model({"text": tf.constant(TEXTS)})
    for row, text in enumerate(TEXTS):
        entities = [
            {
                "entity_group": outputs["entity"][row, i].numpy().decode(),
                "score": round(float(outputs["score"][row, i]), 4),
                "word": outputs["word"][row, i].numpy().decode(),
                "start": int(outputs["start"][row, i]),
                "end": int(outputs["end"][row, i]),
            }
            for i in range(int(outputs["num_entities"][row]))
        ]
        print(json.dumps({"text": text, "entities": entities}, ensure_ascii=False))
    exported = export(model, args.output, overwrite=True, serving_base_path=None)
    print(f"exported to {exported.path} (verified in a TensorFlow-only process)")


if __name__ == "__main__":
    main()
