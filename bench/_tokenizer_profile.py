"""`bench/tokenizer.py --profile`: where tfpipe's time goes, each stage of the compiled
pipeline timed alone on the previous stage's output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf
from _common import markdown_table, median, time_interleaved

from tfpipe import TokenizerLayer
from tfpipe.tokenization.pipeline import decode_replacing_errors

STRING_BATCH = [tf.TensorSpec([None], tf.string)]


@dataclass
class Stage:
    """A sub-function of the compiled pipeline, timed alone on the previous stage's output.

    `feed` turns this stage's output into the next stage's input; the stage returns all its
    outputs so that graph pruning does not drop work the real pipeline does.
    """

    label: str
    fn: Callable
    feed: Callable = lambda output: output


def pipeline_stages(pipeline) -> list[Stage]:
    """The stages of `TokenizationPipeline.encode`, in order (without normalized tokens)."""
    raw = pipeline.raw_tokens

    def split(texts: tf.Tensor) -> tuple[tf.Tensor, tf.RaggedTensor]:
        marked, _ = raw.find(texts)
        parts, ids = raw.split(marked)
        return tf.boolean_mask(parts.values, ids.values < 0), ids

    stages = []
    if raw is not None:
        stages.append(Stage("added tokens (raw_tokens.find, split)", split, lambda out: out[0]))
    stages += [
        Stage("unicode_decode (invalid UTF-8 → U+FFFD)", decode_replacing_errors),
        Stage("normalizer", pipeline.normalizer),
        Stage("pre_tokenizer", pipeline.pre_tokenizer, lambda out: out[0]),
        Stage("model", pipeline.model),
    ]
    return [
        Stage(s.label, tf.function(s.fn, autograph=False, reduce_retracing=True), s.feed)
        for s in stages
    ]


def stage_inputs(stages: list[Stage], batches: list[tf.Tensor]) -> list[list]:
    """Per stage, its input for every batch, computed by running the chain once."""
    inputs, current = [], batches
    for stage in stages:
        inputs.append(current)
        current = [stage.feed(stage.fn(value)) for value in current]
    return inputs


def profile_stages(
    name: str, layer: TokenizerLayer, text_batches: list[list[str]], repeats: int
) -> str:
    """Where tfpipe's time goes: each stage timed alone, on batches of one size.

    Shares are of the stages' sum. The whole layer can take less than that sum (its graph
    runs independent ops in parallel) or more (interleaving added tokens back, ragged
    merges, truncation, template and padding are not in any stage).
    """
    if layer.pipeline.normalized_tokens is not None:
        return f"(no stage profile: {name} has normalized added tokens)"
    size = len(text_batches[0])
    batches = [tf.constant(batch) for batch in text_batches]
    stages = pipeline_stages(layer.pipeline)
    whole = tf.function(layer, input_signature=STRING_BATCH)
    runs = {"whole layer": lambda: [whole(batch) for batch in batches]}
    for stage, values in zip(stages, stage_inputs(stages, batches), strict=True):
        runs[stage.label] = lambda fn=stage.fn, values=values: [fn(v) for v in values]
    seconds = {k: median(v) for k, v in time_interleaved(runs, repeats).items()}
    total = seconds.pop("whole layer")
    stage_sum = sum(seconds.values())
    per_batch = 1000 / len(batches)
    rows = [
        [label, f"{value * per_batch:.1f}", f"{100 * value / stage_sum:.0f}%"]
        for label, value in sorted(seconds.items(), key=lambda item: -item[1])
    ]
    rows.append(["sum of stages", f"{stage_sum * per_batch:.1f}", "100%"])
    rows.append(["whole layer", f"{total * per_batch:.1f}", ""])
    title = f"tfpipe stages, {name}, batch {size}, median of {repeats}:\n\n"
    return title + markdown_table(["stage", "ms per batch", "share"], rows)
