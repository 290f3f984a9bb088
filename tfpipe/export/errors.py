"""The one error export raises."""


class ExportError(RuntimeError):
    """The model cannot be exported, or the exported SavedModel failed its self-check."""
