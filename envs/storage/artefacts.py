"""Content-keyed reuse of a stage's artefacts: one mechanism for every stage.

A stage (collect, pretrain, train, evaluate, ...) writes its artefacts into one directory.
Its *key* is its fully resolved config plus the sha256 of the content of every input it reads
(a dataset, an encoder checkpoint, an agent zip), never their paths: a dataset rewritten at the
same path with other settings has another sha256, so everything built on it is rebuilt.

``stage.json`` in the directory records the key and whether the stage finished::

    s = StageDir(run_dir, key=stage_key(config, {"dataset": dataset_path}), artefacts=["a.zip"])
    if not s.done():
        resuming = s.begin()   # same key, unfinished: directory kept (resume); else wiped
        ...                    # write artefacts (atomically)
        s.finish()

``finish`` is written last, after the artefacts, so a killed stage is never taken as done.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from envs.storage.files import atomic_write_text, file_sha256, json_plain

STAGE_FILE = "stage.json"


@runtime_checkable
class Hashed(Protocol):
    """A file already read whose content hash is known (a representation checkpoint)."""

    sha256: str


def stage_key(
    config: Mapping[str, Any],
    inputs: Mapping[str, str | os.PathLike[str] | Hashed | None] | None = None,
) -> dict[str, Any]:
    """The key of a stage: its resolved config and the content hashes of its inputs.

    Args:
        config: the stage's resolved config, JSON-plain (paths of inputs do not belong here).
        inputs: name -> path of each input file, or an opened file with its ``sha256`` (None:
            no such input).

    Returns:
        ``{"config": config, "inputs": {name: sha256 or None}}``, JSON-plain.
    """
    hashes = {
        k: None if p is None else p.sha256 if isinstance(p, Hashed) else file_sha256(p)
        for k, p in (inputs or {}).items()
    }
    return json_plain({"config": dict(config), "inputs": hashes})


class StageDir:
    """One stage's directory, reused only when its recorded key equals the current one.

    Args:
        path: the directory.
        key: the current key (see :func:`stage_key`).
        artefacts: file names (relative to ``path``) that must exist for the stage to be done.
        name: for several stages sharing one directory (one per evaluated agent, say): the
            record is ``<name>.stage.json`` and starting over deletes only ``artefacts``, not
            the directory.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        key: Mapping[str, Any],
        artefacts: Sequence[str] = (),
        *,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.key = json_plain(dict(key))
        self.artefacts = tuple(artefacts)
        self.record = STAGE_FILE if name is None else f"{name}.{STAGE_FILE}"
        self.shared = name is not None

    def _recorded(self) -> dict[str, Any] | None:
        f = self.path / self.record
        try:
            return json.loads(f.read_text())
        except (OSError, ValueError):
            return None

    def done(self) -> bool:
        """Whether a finished attempt with the same key and all its artefacts is there."""
        rec = self._recorded()
        return (
            rec is not None
            and rec.get("finished") is True
            and rec.get("key") == self.key
            and all((self.path / a).exists() for a in self.artefacts)
        )

    def begin(self, *, resume: bool = True) -> bool:
        """Starts an attempt.

        Args:
            resume: keep what an unfinished attempt with the same key left (the caller
                resumes from it); False: always start from an empty directory.

        Returns:
            True when resuming, False when starting over (the directory, or with ``name`` the
            artefacts, deleted first).
        """
        rec = self._recorded()
        same = rec is not None and rec.get("finished") is False and rec.get("key") == self.key
        if resume and same:
            return True
        if self.shared:
            for a in self.artefacts:
                (self.path / a).unlink(missing_ok=True)
        elif self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._write(finished=False)
        return False

    def finish(self) -> None:
        """Marks the stage finished (call after every artefact is in place)."""
        self._write(finished=True)

    def _write(self, *, finished: bool) -> None:
        data = {"finished": finished, "key": self.key}
        atomic_write_text(self.path / self.record, json.dumps(data, indent=2, sort_keys=True))
