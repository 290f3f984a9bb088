"""Batch scoring with Apache Beam (``pip install 'tfpipe[beam]'``): a RunInference model
handler for tfpipe exports and the ``tfpipe batch-predict`` pipeline. Importing this package
imports apache_beam; ``tfpipe`` itself never does."""

from tfpipe.beam.handler import LoadedExport, SavedModelHandler
from tfpipe.beam.pipeline import batch_predict, run_batch_predict
from tfpipe.beam.records import RecordError, RecordReader

__all__ = [
    "LoadedExport",
    "RecordError",
    "RecordReader",
    "SavedModelHandler",
    "batch_predict",
    "run_batch_predict",
]
