"""Storage: how reprl writes and identifies files, and the dataset format.

The lowest layer's plumbing, used by every layer above:

- :mod:`envs.storage.files`: atomic writes (temporary name, then rename), sha256 of files,
  the library version.
- :mod:`envs.storage.dataset`: the HDF5 format of recorded frames (writer and reader).
- :mod:`envs.storage.artefacts`: content-keyed reuse of a stage's artefact (same resolved
  config and same input contents: reuse; anything else: rebuild).
"""
