"""tfpipe: Hugging Face tokenizers and models as text-in TensorFlow graphs for TF Serving."""

# First: the tfpipe command imports TensorFlow with its start-up logging held back.
import tfpipe._command_start  # noqa: F401
from tfpipe import serving
from tfpipe.export import ExportError, export
from tfpipe.heads import (
    CandidatePairs,
    CandidateSimilarity,
    ClassProbabilities,
    EntailmentProbabilities,
    LabelLookup,
    SentencePooling,
    TopK,
)
from tfpipe.keras_files import read_archived_weights_in_memory
from tfpipe.pipelines import PipelineError, pipeline
from tfpipe.tokenization.detokenizer_layer import DetokenizerLayer
from tfpipe.tokenization.tokenizer_layer import TokenizerLayer
from tfpipe.transformer import ModelLoadError, TransformerLayer

__all__ = [
    "CandidatePairs",
    "CandidateSimilarity",
    "ClassProbabilities",
    "DetokenizerLayer",
    "EntailmentProbabilities",
    "ExportError",
    "LabelLookup",
    "ModelLoadError",
    "PipelineError",
    "SentencePooling",
    "TokenizerLayer",
    "TopK",
    "TransformerLayer",
    "export",
    "pipeline",
    "serving",
]
__version__ = "0.1.0"

read_archived_weights_in_memory()  # saved pipelines reload in seconds (tfpipe/keras_files.py)
