"""Exploration datasets: one HDF5 file of frames, actions, rewards, episodes and factors.

Layout of a dataset file (format version 1)::

    /frames        (T, H, W, 3) uint8, chunked by CHUNK frames, LZF-compressed
    /actions       (T,) int64      action taken after seeing the frame
    /rewards       (T,) float32    reward received for that action
    /dones         (T,) bool       the episode ended after that action
    /episode       (T,) int64      episode id, unique within the file
    /step          (T,) int64      index of the frame within its episode
    /domain        (T,) int64      index into attrs["domains"] (which env id the frame came from)
    /factors/NAME  (T,) or (T, k) int64 ground-truth factors (absent entries are -1)
    /viewpoints    (T, 7) float32  scene datasets only: the camera of each view (below)
    attrs: format_version, complete, env_ids, env_kwargs (JSON), domains, policy (JSON),
           seed, num_envs, factor_names, discrete_factors, reprl_version, created;
           scene datasets: views_per_scene, viewpoint_names

A *scene dataset* (:func:`envs.scenes.collect_scenes`, for GQN) holds scenes of
``views_per_scene`` = K views each: scene s is frames ``[s K, (s + 1) K)`` (its ``episode`` is s,
``step`` the view's index), every view of a scene shows the same world from another camera, and
``/viewpoints`` holds each view's 7-d camera ``(x, y, z, cos yaw, sin yaw, cos pitch, sin
pitch)`` (GQN's). Everything else reads it as frames, so every method pretrains on it and the
probes score its factors.

Frames are written in blocks, environment-major (each block holds, per parallel env, a run of
consecutive frames), so an episode's frames are contiguous within a block and sequence
sampling (CPC) reads contiguous slices. The file is written under a temporary name and renamed
when complete (``attrs["complete"] = True``); a killed collection never leaves a file that
looks finished, and a full disk leaves the file already at the destination as it was.

Every array carries HDF5's Fletcher-32 checksum per chunk (``attrs["checksums"] =
"fletcher32"``, files written since format version 1 gained it): a flipped byte in a frame
chunk is refused when the chunk is read, as a :class:`DatasetError` naming the file and the
rows, instead of training on wrong pixels (LZF alone does not notice every change). Opening
checks the structure (HDF5 refuses a truncated file; every array has one row per frame);
:meth:`FrameDataset.verify` (or ``FrameDataset(path, verify=True)``) reads every chunk once.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from envs.errors import ReprlError
from envs.storage.files import is_no_space, library_version, no_space

FORMAT_VERSION = 1
CHUNK = 128
"""Frames per HDF5 chunk: the unit of random access."""
ARRAYS = ("frames", "actions", "rewards", "dones", "episode", "step", "domain")
"""The per-frame arrays every dataset has."""

DISCRETE_FACTORS = (
    "lives",
    "variant",
    "bricks_left",
    "ball_vx",
    "ball_vy",
    "ball_speed",
    "level_seed",
    "obj_kind",
    "obj_look",
    "obj_alive",
    "obj_visible",
    "room_look",
    "wall_texture",
    "wall_color",
    "floor_texture",
    "floor_color",
    "object_set",
    "good_look",
    "bad_look",
    "layout",
)
"""Factors that are categorical (scored with F1 by the probes): Breakout's counts, velocities
and variant, procgen's level, the lab's object kinds and looks, domain ids and layout; the rest
are positions (and the lab's yaw, in degrees)."""


class DatasetError(ReprlError):
    """A file that is not a finished reprl dataset, or lacks what was asked of it."""


class DatasetWriter:
    """Streams transitions into a new dataset file, atomically finished.

    Use as a context manager; the file appears under ``path`` only when the ``with`` block
    exits without an exception.

    Args:
        path: destination ``.h5`` file (its parent is created).
        frame_shape: (H, W, 3) of the frames.
        factor_shapes: factor name -> per-frame shape (``()`` or ``(k,)``).
        attrs: JSON-plain metadata stored in the file (env ids, kwargs, policy, seed, ...).
        arrays: further per-frame float32 arrays, name -> per-frame shape (``viewpoints``:
            ``(7,)`` in a scene dataset); each block then carries them too.
    """

    def __init__(
        self,
        path: str | Path,
        frame_shape: tuple[int, int, int],
        factor_shapes: dict[str, tuple[int, ...]],
        attrs: dict[str, Any],
        arrays: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self._f = h5py.File(self.tmp, "w")
        self._n = 0
        f = self._f

        def ds(name: str, shape: tuple[int, ...], dtype, **kw) -> None:
            f.create_dataset(
                name,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=dtype,
                chunks=(CHUNK, *shape),
                fletcher32=True,
                **kw,
            )

        ds("frames", frame_shape, np.uint8, compression="lzf")
        ds("actions", (), np.int64)
        ds("rewards", (), np.float32)
        ds("dones", (), bool)
        ds("episode", (), np.int64)
        ds("step", (), np.int64)
        ds("domain", (), np.int64)
        for name, shape in factor_shapes.items():
            ds(f"factors/{name}", shape, np.int64)
        self._arrays = tuple(arrays or ())
        for name, shape in (arrays or {}).items():
            ds(name, tuple(shape), np.float32)
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["complete"] = False
        f.attrs["reprl_version"] = library_version()
        f.attrs["factor_names"] = json.dumps(list(factor_shapes))
        f.attrs["checksums"] = "fletcher32"
        for k, v in attrs.items():
            f.attrs[k] = json.dumps(v)

    def __len__(self) -> int:
        return self._n

    def append(self, block: dict[str, Any]) -> None:
        """Appends a block of M frames.

        Args:
            block: ``frames`` (M, H, W, 3) uint8; ``actions``, ``rewards``, ``dones``,
                ``episode``, ``step``, ``domain`` (M,); ``factors``: name -> (M, ...) arrays;
                the writer's further ``arrays`` by name.
        """
        m = len(block["frames"])
        lo, hi = self._n, self._n + m
        items = [(k, block[k]) for k in (*ARRAYS, *self._arrays)]
        items += [(f"factors/{k}", v) for k, v in block["factors"].items()]
        try:
            for name, value in items:
                d = self._f[name]
                d.resize(hi, axis=0)
                d[lo:hi] = value
        except OSError as e:
            if is_no_space(e):
                raise no_space(self.path, e) from e
            raise
        self._n = hi

    def close(self, complete: bool) -> None:
        """Closes the file; renames it into place if ``complete``, else deletes it (a writer
        killed outright leaves a ``.partial`` file that readers refuse as unfinished).

        Raises:
            OSError: a full disk while finishing (:func:`envs.storage.files.no_space` of the
                destination): the temporary file is deleted and the file at ``path``, if any,
                left as it was.
        """
        try:
            if self._f.id.valid:
                self._f.attrs["complete"] = bool(complete)
                self._f.close()
            if complete:
                os.replace(self.tmp, self.path)
        except BaseException as e:
            # already failing: the file is deleted below either way
            with contextlib.suppress(Exception):
                if self._f.id.valid:
                    self._f.close()
            self.tmp.unlink(missing_ok=True)
            if is_no_space(e):
                raise no_space(self.path, e) from e  # type: ignore[arg-type]
            raise
        if not complete:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset file says about itself (its attrs, decoded)."""

    path: str
    num_frames: int
    frame_shape: tuple[int, int, int]
    factor_names: tuple[str, ...]
    discrete_factors: tuple[str, ...]
    domains: tuple[str, ...]
    attrs: dict[str, Any]


def _decode_attrs(f: h5py.File) -> dict[str, Any]:
    out = {}
    for k, v in f.attrs.items():
        try:
            out[k] = json.loads(v) if isinstance(v, str) else v.item() if hasattr(v, "item") else v
        except (json.JSONDecodeError, ValueError):
            out[k] = v
    return out


class FrameDataset:
    """Read access to a finished dataset without loading it into memory.

    Args:
        path: a ``.h5`` file written by :class:`DatasetWriter`.
        verify: also read every chunk of every array once (:meth:`verify`), so that a damaged
            chunk is refused now rather than when it is first read.

    Raises:
        DatasetError: not an HDF5 file, truncated, damaged, unfinished, of a future format
            version, missing a required array, or arrays of other lengths than the frames';
            each names the file and what is wrong.
    """

    REQUIRED = ARRAYS

    def __init__(self, path: str | Path, *, verify: bool = False) -> None:
        self.path = str(path)
        if not os.path.exists(self.path):
            raise DatasetError(f"no dataset at {self.path}")
        try:
            f = h5py.File(self.path, "r")
        except OSError as e:
            raise DatasetError(_open_problem(self.path, e)) from None
        try:
            self._open(f)
        except DatasetError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError, TypeError) as e:
            raise DatasetError(
                f"{self.path} is a damaged dataset: its HDF5 structure cannot be read "
                f"({' '.join(str(e).split())}); collect it again"
            ) from None
        finally:
            f.close()
        self._f: h5py.File | None = None
        if verify:
            self.verify()

    def _open(self, f: h5py.File) -> None:
        """Reads the attrs and the small per-frame arrays, checking the structure."""
        attrs = _decode_attrs(f)
        version = attrs.get("format_version")
        if version is None:
            raise DatasetError(f"{self.path} is an HDF5 file but not a reprl dataset")
        if int(version) > FORMAT_VERSION:
            raise DatasetError(
                f"{self.path} has dataset format version {version}; this reprl reads up to "
                f"{FORMAT_VERSION}: upgrade reprl"
            )
        if not attrs.get("complete", False):
            raise DatasetError(f"{self.path} is an unfinished dataset (its writer was killed)")
        missing = [k for k in self.REQUIRED if k not in f]
        if missing:
            raise DatasetError(f"{self.path} lacks the arrays {missing}")
        names = tuple(attrs.get("factor_names", ()))
        missing = [n for n in names if f"factors/{n}" not in f]
        if missing:
            raise DatasetError(f"{self.path} lacks the factor arrays {missing}")
        frames = f["frames"]
        if frames.ndim != 4 or frames.dtype != np.uint8:
            raise DatasetError(
                f"{self.path}: frames: expected (T, H, W, C) uint8, got {frames.shape} "
                f"{frames.dtype}"
            )
        n = int(frames.shape[0])
        arrays = [*self.REQUIRED, *(f"factors/{k}" for k in names)]
        arrays += [k for k in ("viewpoints",) if k in f]
        short = {k: int(f[k].shape[0]) for k in arrays if int(f[k].shape[0]) != n}
        if short:
            raise DatasetError(
                f"{self.path} is damaged: expected {n} rows (one per frame) in every array, "
                f"got {short}"
            )
        self.info = DatasetInfo(
            path=self.path,
            num_frames=int(f["frames"].shape[0]),
            frame_shape=tuple(f["frames"].shape[1:]),
            factor_names=names,
            discrete_factors=tuple(attrs.get("discrete_factors", ())),
            domains=tuple(attrs.get("domains", ())),
            attrs=attrs,
        )
        # small per-frame arrays are read once (their checksums with them); frames stay
        # on disk
        self.episode = _read(self.path, f, "episode", slice(None))
        self.step = _read(self.path, f, "step", slice(None))
        self.domain = _read(self.path, f, "domain", slice(None))

    def __len__(self) -> int:
        return self.info.num_frames

    @property
    def file(self) -> h5py.File:
        """The open HDF5 file (opened lazily, once per process)."""
        if self._f is None:
            self._f = h5py.File(self.path, "r")
        return self._f

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def frames(self, index: np.ndarray | slice) -> np.ndarray:
        """Frames at ``index`` (sorted int array or slice): (K, H, W, 3) uint8.

        Raises:
            DatasetError: a chunk of them is damaged (checksum or decompression fails).
        """
        return _read(self.path, self.file, "frames", index)

    def verify(self) -> None:
        """Reads every chunk of every array once: a damaged chunk (its Fletcher-32 checksum,
        or its LZF compression in files written before checksums) is refused now.

        Raises:
            DatasetError: naming the file, the array and the rows of the first damaged chunk.
        """
        f = self.file
        names: list[str] = []
        f.visit(lambda name: names.append(name) if isinstance(f[name], h5py.Dataset) else None)
        step = CHUNK * 16
        for name in names:
            for lo in range(0, int(f[name].shape[0]), step):
                _read(self.path, f, name, slice(lo, lo + step))

    def factors(
        self, names: Sequence[str] | None = None, index=slice(None)
    ) -> dict[str, np.ndarray]:
        """Factor arrays name -> (K,) or (K, k) int64.

        Raises:
            DatasetError: a requested factor is not in the dataset.
        """
        names = list(self.info.factor_names if names is None else names)
        missing = [n for n in names if n not in self.info.factor_names]
        if missing:
            raise DatasetError(
                f"{self.path} has no factors {missing}; it has {list(self.info.factor_names)}"
            )
        return {n: self.file[f"factors/{n}"][index] for n in names}

    def array(self, name: str, index=slice(None)) -> np.ndarray:
        """Any per-frame array (``actions``, ``rewards``, ``dones``, ...) at ``index``."""
        return _read(self.path, self.file, name, index)

    # --- batches ---------------------------------------------------------------------------
    def iter_batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        buffer_chunks: int = 16,
        drop_last: bool = True,
        prefetch: bool = True,
        return_index: bool = False,
    ) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch of frame minibatches, (B, H, W, 3) uint8.

        Shuffling is two-level so reads stay sequential: chunks of :data:`CHUNK` frames are
        visited in random order, ``buffer_chunks`` at a time, and shuffled together.

        Args:
            batch_size: frames per batch, >= 1.
            shuffle: random order (False: file order).
            seed: seed of the shuffle.
            buffer_chunks: chunks held in memory at once (memory = buffer_chunks * 128 frames).
            drop_last: drop a final partial batch.
            prefetch: read the next buffer in a background thread while the caller trains.
            return_index: yield ``(frames, index)``, ``index`` (B,) int64 the frames' rows in
                the file (to look up their factors, say).
        """
        if batch_size < 1:
            raise ReprlError(f"batch_size: expected an integer >= 1, got {batch_size}")
        rng = np.random.default_rng(seed)
        n = len(self)
        starts = np.arange(0, n, CHUNK)
        if shuffle:
            rng.shuffle(starts)
        groups = [
            np.sort(starts[i : i + buffer_chunks]) for i in range(0, len(starts), buffer_chunks)
        ]

        def load(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            spans = [slice(s, min(s + CHUNK, n)) for s in group]
            index = np.concatenate([np.arange(sp.start, sp.stop) for sp in spans])
            return np.concatenate([self.frames(sp) for sp in spans]), index

        carry = np.zeros((0, *self.info.frame_shape), np.uint8)
        carry_index = np.zeros(0, np.int64)
        for buf, index in _maybe_prefetch(map(load, groups), prefetch):
            if shuffle:
                order = rng.permutation(len(buf))
                buf, index = buf[order], index[order]
            if len(carry):
                buf, index = np.concatenate([carry, buf]), np.concatenate([carry_index, index])
            k = len(buf) // batch_size * batch_size
            for i in range(0, k, batch_size):
                batch = buf[i : i + batch_size]
                yield (batch, index[i : i + batch_size]) if return_index else batch
            carry, carry_index = buf[k:], index[k:]
        if len(carry) and not drop_last:
            yield (carry, carry_index) if return_index else carry

    def sequence_starts(self, length: int) -> np.ndarray:
        """Indices i where frames i .. i+length-1 are consecutive steps of one episode."""
        if length < 1 or length > len(self):
            raise ReprlError(
                f"sequence length: expected an integer in [1, {len(self)}], got {length}"
            )
        e, s = self.episode, self.step
        i = np.arange(len(self) - length + 1)
        ok = (e[i + length - 1] == e[i]) & (s[i + length - 1] - s[i] == length - 1)
        return i[ok]

    def iter_sequences(
        self, batch_size: int, length: int, *, num_batches: int, seed: int = 0
    ) -> Iterator[dict[str, np.ndarray]]:
        """Random sequences of consecutive frames from single episodes (for CPC).

        Yields:
            ``frames`` (B, L, H, W, 3) uint8, ``actions`` (B, L) int64, ``episode`` (B,) int64.
        """
        starts = self.sequence_starts(length)
        if len(starts) == 0:
            raise DatasetError(f"{self.path} has no episode segment of {length} frames")
        rng = np.random.default_rng(seed)
        for _ in range(num_batches):
            pick = np.sort(rng.choice(starts, size=batch_size, replace=len(starts) < batch_size))
            frames = np.stack([self.frames(slice(i, i + length)) for i in pick])
            actions = np.stack([self.array("actions", slice(i, i + length)) for i in pick])
            yield {"frames": frames, "actions": actions, "episode": self.episode[pick]}

    def iter_pairs(
        self,
        batch_size: int,
        offset: int,
        *,
        seed: int = 0,
        buffer_chunks: int = 16,
        prefetch: bool = True,
    ) -> Iterator[dict[str, np.ndarray]]:
        """One epoch of frame pairs ``(t, t + offset)`` of one episode each (ST-DIM, ATC).

        Every pair start (:meth:`sequence_starts` of ``offset + 1``: never across an episode
        end) is drawn once per epoch, in random order; a final partial batch is dropped. Reads
        stay chunk-sequential as in :meth:`iter_batches`: chunks holding pair starts are
        visited in random order, ``buffer_chunks`` at a time (each read up to its last start's
        partner), and the pairs of a buffer are shuffled together.

        Args:
            batch_size: pairs per batch, >= 1.
            offset: ``k >= 1``, steps between the two frames of a pair.
            seed: seed of the order.
            buffer_chunks: chunks held in memory at once.
            prefetch: read the next buffer in a background thread while the caller trains.

        Yields:
            ``obs`` (B, H, W, C) uint8 (frame t), ``next_obs`` (B, H, W, C) uint8 (frame
            t + offset of the same episode) and ``index`` (B,) int64, the rows of ``obs``.

        Raises:
            ReprlError: ``batch_size`` or ``offset`` below 1, or no pair in the file.
        """
        if batch_size < 1:
            raise ReprlError(f"batch_size: expected an integer >= 1, got {batch_size}")
        if offset < 1 or offset >= len(self):
            raise ReprlError(f"offset: expected an integer in [1, {len(self) - 1}], got {offset}")
        starts = self.sequence_starts(offset + 1)
        if len(starts) == 0:
            raise DatasetError(f"{self.path} has no pair of frames {offset} steps apart")
        rng = np.random.default_rng(seed)
        chunks = np.unique(starts // CHUNK)
        rng.shuffle(chunks)
        groups = [
            np.sort(chunks[i : i + buffer_chunks]) for i in range(0, len(chunks), buffer_chunks)
        ]

        def load(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            obs, nxt, index = [], [], []
            for c in group:
                lo = int(c) * CHUNK
                s = starts[(starts >= lo) & (starts < lo + CHUNK)]
                block = self.frames(slice(lo, int(s[-1]) + offset + 1))
                obs.append(block[s - lo])
                nxt.append(block[s - lo + offset])
                index.append(s)
            return np.concatenate(obs), np.concatenate(nxt), np.concatenate(index)

        shape = self.info.frame_shape
        empty = np.zeros((0, *shape), np.uint8)
        carry = (empty, empty, np.zeros(0, np.int64))
        for buf in _maybe_prefetch(map(load, groups), prefetch):
            order = rng.permutation(len(buf[2]))
            buf = tuple(np.concatenate([c, b[order]]) for c, b in zip(carry, buf))
            k = len(buf[2]) // batch_size * batch_size
            for i in range(0, k, batch_size):
                obs, nxt, index = (b[i : i + batch_size] for b in buf)
                yield {"obs": obs, "next_obs": nxt, "index": index}
            carry = tuple(b[k:] for b in buf)

    def iter_episodes(
        self, episodes_per_batch: int, *, seed: int = 0
    ) -> Iterator[dict[str, np.ndarray]]:
        """Batches grouped by episode: all stored frames of ``episodes_per_batch`` episodes.

        Yields:
            ``frames`` (K, H, W, 3) uint8, ``episode`` (K,) int64 and ``step`` (K,) int64 (each
            episode's frames in step order, 0 .. len - 1; K varies with the episodes).
        """
        ids = np.unique(self.episode)
        np.random.default_rng(seed).shuffle(ids)
        for i in range(0, len(ids), episodes_per_batch):
            index = np.flatnonzero(np.isin(self.episode, ids[i : i + episodes_per_batch]))
            yield {
                "frames": self.frames(index),
                "episode": self.episode[index],
                "step": self.step[index],
            }

    # --- scenes (GQN) ----------------------------------------------------------------------
    @property
    def views_per_scene(self) -> int | None:
        """K of a scene dataset (module doc), None for a dataset of trajectories."""
        k = self.info.attrs.get("views_per_scene")
        return None if k is None else int(k)

    @property
    def num_scenes(self) -> int:
        """Scenes in a scene dataset (0 for a dataset of trajectories)."""
        k = self.views_per_scene
        return 0 if k is None else len(self) // k

    def viewpoints(self, index: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The 7-d cameras of the views at ``index``: (K, 7) float32.

        Raises:
            DatasetError: not a scene dataset.
        """
        self._need_scenes()
        return self.file["viewpoints"][index]

    def _need_scenes(self) -> int:
        k = self.views_per_scene
        if k is None or "viewpoints" not in self.file:
            raise DatasetError(
                f"{self.path} holds trajectories, not scenes: expected a scene dataset with "
                "views_per_scene and viewpoints (written by envs.scenes.collect_scenes, "
                "`reprl collect` with views_per_scene >= 2)"
            )
        return k

    def iter_scenes(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        buffer_frames: int = 16 * CHUNK,
        prefetch: bool = True,
    ) -> Iterator[dict[str, np.ndarray]]:
        """One epoch of shuffled scene minibatches (a final partial batch is dropped).

        Reads stay sequential as in :meth:`iter_batches`: runs of whole scenes of about
        ``buffer_frames`` frames are visited in random order and their scenes shuffled.

        Args:
            batch_size: scenes per batch, in [1, :attr:`num_scenes`].
            seed: seed of the shuffle.
            buffer_frames: frames held in memory at once (at least one scene's).
            prefetch: read the next run in a background thread.

        Yields:
            ``views`` (B, K, H, W, 3) uint8, ``viewpoints`` (B, K, 7) float32 and ``scene``
            (B,) int64 (the scene's index in the file).

        Raises:
            DatasetError: not a scene dataset, or fewer scenes than ``batch_size``.
        """
        k = self._need_scenes()
        n = self.num_scenes
        if not 1 <= batch_size <= n:
            raise DatasetError(
                f"batch_size: expected an integer in [1, {n}] (the scenes of {self.path}), "
                f"got {batch_size}"
            )
        rng = np.random.default_rng(seed)
        per_run = max(1, buffer_frames // k)
        runs = np.arange(0, n, per_run)
        rng.shuffle(runs)

        def load(first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            last = min(first + per_run, n)
            span = slice(first * k, last * k)
            views = self.frames(span).reshape(last - first, k, *self.info.frame_shape)
            cams = self.file["viewpoints"][span].reshape(last - first, k, -1)
            return views, cams, np.arange(first, last)

        carry: tuple[np.ndarray, ...] | None = None
        for views, cams, scene in _maybe_prefetch(map(load, runs), prefetch):
            order = rng.permutation(len(scene))
            parts = (views[order], cams[order], scene[order])
            if carry is not None:
                parts = tuple(np.concatenate([c, p]) for c, p in zip(carry, parts))
            m = len(parts[2]) // batch_size * batch_size
            for i in range(0, m, batch_size):
                views_b, cams_b, scene_b = (a[i : i + batch_size] for a in parts)
                yield {"views": views_b, "viewpoints": cams_b, "scene": scene_b}
            carry = tuple(a[m:] for a in parts)


def _open_problem(path: str, e: OSError) -> str:
    """What is wrong with a file HDF5 does not open, in words."""
    text = " ".join(str(e).split())
    if "truncated file" in text:
        return (
            f"{path} is not a readable HDF5 dataset: it is truncated ({text}): the write or the "
            "copy was cut short; collect it again (or copy it again)"
        )
    return (
        f"{path} is not a readable HDF5 dataset (truncated, damaged or another kind of file): "
        f"{text}"
    )


def _read(path: str, f: h5py.File, name: str, index: Any) -> np.ndarray:
    """``f[name][index]``, a damaged chunk refused as a :class:`DatasetError`."""
    try:
        return f[name][index]
    except OSError as e:
        rows = f"rows {index.start or 0}..{index.stop}" if isinstance(index, slice) else "rows"
        if isinstance(index, slice) and index.stop is None:
            rows = "rows"
        raise DatasetError(
            f"{path} is damaged: {name} ({rows}) cannot be read back ({' '.join(str(e).split())}"
            "; a checksum or the compression no longer matches what was written): collect it "
            "again"
        ) from None


def _maybe_prefetch(it: Iterator[Any], enabled: bool) -> Iterator[Any]:
    """Runs ``it`` one item ahead in a daemon thread when ``enabled``."""
    if not enabled:
        yield from it
        return
    q: queue.Queue = queue.Queue(maxsize=1)
    done = object()

    def work() -> None:
        try:
            for item in it:
                q.put(item)
        except BaseException as e:  # surfaced in the consumer
            q.put(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
