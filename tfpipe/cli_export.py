"""``tfpipe export``: its options, turned into a pipeline's keyword arguments, and the export."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tfpipe.cli_args import limit_or_off
from tfpipe.cli_io import CommandError

TASKS = (
    "text-classification",
    "feature-extraction",
    "zero-shot-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
)


def add_parser(commands: Any) -> None:
    """Registers ``export`` on the ``tfpipe`` subcommands."""
    from tfpipe.pipelines import TASK_ALIASES

    export = commands.add_parser("export", help="build a pipeline and export it as a SavedModel")
    export.add_argument("--task", required=True, choices=[*TASKS, *TASK_ALIASES])
    export.add_argument("--model", required=True, help="local checkpoint folder")
    export.add_argument("--output", required=True, help="saved_models/NAME/VERSION")
    export.add_argument("--max-length", type=int, help="tokens per text (default: checkpoint's)")
    export.add_argument(
        "--pad-token", help="the tokenizer's pad token if it has none, e.g. '<|endoftext|>'"
    )
    export.add_argument("--candidate-labels", nargs="+", help="zero-shot labels")
    export.add_argument("--hypothesis-template", help='zero-shot template, e.g. "This is {}."')
    export.add_argument("--multi-label", action="store_true", help="zero-shot with NLI models")
    export.add_argument("--text-pair", action="store_true", help="classify (text, text_pair)")
    export.add_argument(
        "--top-k",
        type=int,
        help="text-classification: add top_labels/top_scores; question-answering: answers per "
        "question (default 1); fill-mask: tokens per text (default 5)",
    )
    export.add_argument("--doc-stride", type=int, help="question answering: window overlap")
    export.add_argument("--max-seq-len", type=int, help="question answering: tokens per window")
    export.add_argument("--max-answer-len", type=int, help="question answering: answer tokens")
    export.add_argument(
        "--max-question-len", type=int, help="question answering: accepted, unused (as HF)"
    )
    export.add_argument(
        "--handle-impossible-answer",
        action="store_true",
        help="question answering: the empty answer competes",
    )
    export.add_argument(
        "--no-align-to-words",
        action="store_true",
        help="question answering: answers at token, not word, boundaries",
    )
    export.add_argument(
        "--labels", nargs="+", metavar="NAME", help="class names of a new classification head"
    )
    export.add_argument(
        "--aggregation-strategy",
        choices=["none", "simple", "first", "average", "max"],
        help="token-classification: entities per token (none, the default) or grouped",
    )
    export.add_argument(
        "--ignore-labels",
        nargs="*",
        metavar="LABEL",
        help="token-classification: labels left out (default: O; none given: keep all)",
    )
    export.add_argument(
        "--stride", type=int, help="token-classification: read long texts in windows sharing N"
    )
    export.add_argument(
        "--allow-untrained-head",
        action="store_true",
        help="build a model with weights the checkpoint lacks (an untrained head)",
    )
    export.add_argument(
        "--max-chunk-tokens",
        type=limit_or_off,
        metavar="N|off",
        help="padded tokens per model chunk of a length-sorted batch (default: 512; "
        "off: the whole batch at once)",
    )
    export.add_argument(
        "--micro-batch-size",
        type=limit_or_off,
        metavar="N|off",
        help="rows per model chunk at most (default: off, only --max-chunk-tokens limits)",
    )
    export.add_argument(
        "--keras",
        choices=["tf-keras", "3"],
        default="tf-keras",
        help="3: build with tfpipe.keras (Keras 3 on keras-hub: text-classification and "
        "feature-extraction for BERT, DistilBERT, ALBERT, RoBERTa, XLM-RoBERTa; GPT-2 "
        "feature-extraction; --max-length, --pad-token, --text-pair, --labels, "
        "--allow-untrained-head)",
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.add_argument(
        "--allow-pickle", action="store_true", help="allow pytorch_model.bin (runs pickle)"
    )
    export.add_argument(
        "--serving-base-path",
        default="/models",
        help="where the model server sees the base folder in models.config (default: /models)",
    )
    export.set_defaults(handler=run_export)


def pipeline_options(args: argparse.Namespace) -> dict[str, Any]:
    """Only the options the user gave, so the task builder rejects ones it does not take."""
    options = {
        "candidate_labels": args.candidate_labels,
        "hypothesis_template": args.hypothesis_template,
        "top_k": args.top_k,
        "multi_label": args.multi_label or None,
        "text_pair": args.text_pair or None,
        "allow_untrained_head": args.allow_untrained_head or None,
        "doc_stride": args.doc_stride,
        "max_seq_len": args.max_seq_len,
        "max_answer_len": args.max_answer_len,
        "max_question_len": args.max_question_len,
        "handle_impossible_answer": args.handle_impossible_answer or None,
        "align_to_words": False if args.no_align_to_words else None,
        "aggregation_strategy": args.aggregation_strategy,
        "ignore_labels": args.ignore_labels,
        "stride": args.stride,
    }
    given = {name: value for name, value in options.items() if value is not None}
    return {**given, **label_options(args.labels), **chunking_options(args)}


def chunking_options(args: argparse.Namespace) -> dict[str, int | None]:
    """The chunking limits the user set; 'off' is None (no limit)."""
    limits = {"max_chunk_tokens": args.max_chunk_tokens, "micro_batch_size": args.micro_batch_size}
    return {
        name: None if value == "off" else value
        for name, value in limits.items()
        if value is not None
    }


def label_options(labels: list[str] | None) -> dict[str, Any]:
    """``--labels`` as the config overrides naming a head's classes, in logit order."""
    if not labels:
        return {}
    if len(set(labels)) != len(labels):
        raise CommandError(f"--labels has duplicates: {' '.join(labels)}")
    return {
        "id2label": dict(enumerate(labels)),
        "label2id": {label: index for index, label in enumerate(labels)},
    }


def run_export(args: argparse.Namespace) -> None:
    import transformers

    from tfpipe.export import export
    from tfpipe.pipelines import pipeline

    transformers.logging.set_verbosity_error()
    if args.keras == "3":
        model = keras3_pipeline(args)
    else:
        model = pipeline(
            args.task,
            args.model,
            max_length=args.max_length,
            allow_pickle=args.allow_pickle,
            pad_token=args.pad_token,
            **pipeline_options(args),
        )
    exported = export(
        model, args.output, overwrite=args.overwrite, serving_base_path=args.serving_base_path
    )
    print(
        json.dumps(
            {
                "saved_model": str(exported.path),
                "models_config": str(exported.models_config),
                **exported.metadata,
            }
        )
    )


KERAS3_OPTIONS = frozenset({"text_pair", "allow_untrained_head", "id2label", "label2id"})


def keras3_pipeline(args: argparse.Namespace):
    """``--keras 3``: the tfpipe.keras pipeline; an option it does not take is an error."""
    from tfpipe.keras import pipeline

    options = pipeline_options(args)
    refused = sorted(set(options) - KERAS3_OPTIONS)
    refused += ["allow_pickle"] if args.allow_pickle else []
    if refused:
        flags = ", ".join("--" + name.replace("_", "-") for name in refused)
        raise CommandError(f"--keras 3 does not take {flags}")
    options.pop("label2id", None)
    return pipeline(
        args.task, args.model, max_length=args.max_length, pad_token=args.pad_token, **options
    )
