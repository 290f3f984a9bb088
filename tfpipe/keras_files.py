"""Loading ``.keras`` files fast: their weights read from memory, not seeked through the zip.

tf-keras hands h5py the weights file (``model.weights.h5``) as an open zip member, and
Python's zipfile serves every backward seek by reading the member again from its start:
reloading a BERT-base pipeline (440 MB) took 37-100 s on 2 cores, mostly those re-reads.
Read whole, once, its weights load in 0.5 s and the whole reload takes 11 s. The member's
bytes are held while the weights load, which copies them into the variables anyway.
"""

from __future__ import annotations

import io
import zipfile

from tf_keras.src.saving import saving_lib


class WholeMembers:
    """A zip archive whose ``open`` returns a member's bytes, read once, as a memory file."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive

    def open(self, name: str, mode: str = "r") -> io.BytesIO:
        return io.BytesIO(self.archive.read(name))


class InMemoryH5IOStore(saving_lib.H5IOStore):
    """tf-keras' HDF5 weights store, reading an archived weights file from memory."""

    def __init__(self, root_path, archive=None, mode="r") -> None:
        if archive is not None and mode == "r":
            archive = WholeMembers(archive)
        super().__init__(root_path, archive=archive, mode=mode)


def read_archived_weights_in_memory() -> None:
    """Make ``tf_keras.models.load_model`` (and ``load_weights``) read a ``.keras`` file's
    weights from memory. tf-keras is pinned (setup.cfg), so its store class is known."""
    saving_lib.H5IOStore = InMemoryH5IOStore
