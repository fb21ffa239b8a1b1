"""Datasets under faults: a full disk while writing, a truncated file, flipped bytes in a chunk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from envs.storage import dataset as D
from envs.storage.dataset import CHUNK, DatasetError, DatasetWriter, FrameDataset

N = 6 * CHUNK


def _write(path: Path, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    with DatasetWriter(path, (16, 16, 3), {"ball_x": ()}, {"env_ids": ["x"]}) as w:
        for lo in range(0, N, 2 * CHUNK):
            m = 2 * CHUNK
            w.append(
                {
                    "frames": rng.integers(0, 8, (m, 16, 16, 3), dtype=np.uint8),  # compressible
                    "actions": rng.integers(0, 3, m),
                    "rewards": np.zeros(m, np.float32),
                    "dones": np.zeros(m, bool),
                    "episode": np.full(m, lo // m),
                    "step": np.arange(m),
                    "domain": np.zeros(m, np.int64),
                    "factors": {"ball_x": np.arange(m)},
                }
            )
    return path.read_bytes()


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("faults") / "explore.h5"
    return path, _write(path)


def test_new_datasets_carry_chunk_checksums(original: tuple[Path, bytes]) -> None:
    path, _ = original
    with h5py.File(path) as f:
        assert f.attrs["checksums"] == "fletcher32"
        assert all(f[k].fletcher32 for k in (*D.ARRAYS, "factors/ball_x"))
    ds = FrameDataset(path, verify=True)
    assert len(ds) == N


@pytest.mark.parametrize("fraction", [0.02, 0.25, 0.5, 0.75, 0.98, 0.9999])
def test_a_truncated_file_is_refused_on_open_naming_it(
    fraction: float, original: tuple[Path, bytes], tmp_path: Path
) -> None:
    _, data = original
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DatasetError, match=rf"^{cut} is not a readable HDF5 dataset: it is trunc"):
        FrameDataset(cut)


def _chunk(path: Path, name: str, i: int) -> tuple[int, int]:
    with h5py.File(path) as f:
        info = f[name].id.get_chunk_info(i)
    return info.byte_offset, info.size


@pytest.mark.parametrize("chunk", [0, 3, N // CHUNK - 1])
@pytest.mark.parametrize("at", [0.1, 0.5, 0.95])
def test_a_flipped_byte_in_a_frame_chunk_is_refused_naming_file_and_rows(
    chunk: int, at: float, original: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, data = original
    offset, size = _chunk(path, "frames", chunk)
    bad = bytearray(data)
    bad[offset + int(size * at)] ^= 0x10
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(bytes(bad))
    ds = FrameDataset(damaged)  # the structure is whole: opening is cheap and succeeds
    lo = chunk * CHUNK
    ds.frames(slice(0 if chunk else CHUNK, (0 if chunk else CHUNK) + CHUNK))  # other chunks read
    rows = rf"rows {lo}\.\.{lo + CHUNK}"
    with pytest.raises(DatasetError, match=rf"^{damaged} is damaged: frames \({rows}\)"):
        ds.frames(slice(lo, lo + CHUNK))
    with pytest.raises(DatasetError, match=rf"^{damaged} is damaged: frames"):
        list(ds.iter_batches(32))  # in the prefetch thread too
    ds.close()
    with pytest.raises(DatasetError, match=rf"^{damaged} is damaged: frames"):
        FrameDataset(damaged, verify=True)


def test_a_flipped_byte_in_the_episode_ids_is_refused_on_open(
    original: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, data = original
    offset, size = _chunk(path, "episode", 1)
    bad = bytearray(data)
    bad[offset + size // 2] ^= 0x01
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(bytes(bad))
    with pytest.raises(DatasetError, match=rf"^{damaged} is damaged: episode"):
        FrameDataset(damaged)


def test_arrays_of_other_lengths_are_refused(original: tuple[Path, bytes], tmp_path: Path) -> None:
    _, data = original
    short = tmp_path / "short.h5"
    short.write_bytes(data)
    with h5py.File(short, "a") as f:
        f["actions"].resize(N - 5, axis=0)
    with pytest.raises(DatasetError, match=rf"expected {N} rows .* got \{{'actions': {N - 5}\}}"):
        FrameDataset(short)


def _full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["append", "finish"])
def test_a_full_disk_keeps_the_previous_dataset_and_a_rerun_completes(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "explore.h5"
    before = _write(path, seed=0)
    if where == "finish":
        monkeypatch.setattr(D.os, "replace", _full)
    else:
        monkeypatch.setattr(h5py.Dataset, "__setitem__", _full)
    with pytest.raises(OSError) as info:
        _write(path, seed=1)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["explore.h5"]  # no .partial left
    monkeypatch.undo()
    after = _write(path, seed=1)
    assert after != before and len(FrameDataset(path, verify=True)) == N


def test_a_dataset_written_before_checksums_still_opens(
    original: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, _ = original
    old = tmp_path / "old.h5"
    with h5py.File(path) as src, h5py.File(old, "w") as dst:
        for k, v in src.attrs.items():
            if k != "checksums":
                dst.attrs[k] = v
        for name in (*D.ARRAYS, "factors/ball_x"):
            d = src[name]
            dst.create_dataset(name, data=d[:], chunks=d.chunks, compression=d.compression)
    ds = FrameDataset(old, verify=True)
    assert len(ds) == N and not ds.file["frames"].fletcher32
    np.testing.assert_array_equal(ds.frames(slice(0, 10)), FrameDataset(path).frames(slice(0, 10)))
