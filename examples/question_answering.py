"""Extractive question answering from raw strings, exported for TF Serving.

Takes a local question-answering checkpoint folder, e.g. one downloaded with
``huggingface-cli download distilbert/distilbert-base-cased-distilled-squad --local-dir
models/squad`` (or deepset/roberta-base-squad2), builds the pipeline (the answers are the
ones transformers' ``pipeline("question-answering")`` gives), prints the best answers to a
few questions and exports it to ``--output`` (default saved_models/question_answering/1),
where ``tfpipe predict`` or TF Serving run it:

    python examples/question_answering.py --model models/squad
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402
import transformers  # noqa: E402

from tfpipe.export import export  # noqa: E402
from tfpipe.pipelines import pipeline  # noqa: E402

QUESTIONS = [
    ("Where do I live?", "My name is Wolfgang and I live in Berlin."),
    ("What does Hugging Face build?", "Hugging Face, founded in 2016, builds open-source "
     "tools for machine learning, such as the transformers library."),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a question-answering checkpoint folder")
    parser.add_argument("--output", default="saved_models/question_answering/1")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    model = pipeline("question-answering", args.model, top_k=2)
    questions, contexts = zip(*QUESTIONS, strict=True)
    outputs = model({"question": tf.constant(questions), "context": tf.constant(contexts)})
    for row, question in enumerate(questions):
        print(question)
        for rank in range(int(outputs["num_answers"][row])):
            answer = outputs["answer"][row, rank].numpy().decode("utf-8")
            score = float(outputs["score"][row, rank])
            start, end = int(outputs["start"][row, rank]), int(outputs["end"][row, rank])
            print(f"  {answer!r} (score {score:.4f}, characters {start}-{end})")
    exported = export(model, args.output, overwrite=True, serving_base_path=None)
    print(f"exported to {exported.path}")


if __name__ == "__main__":
    main()
