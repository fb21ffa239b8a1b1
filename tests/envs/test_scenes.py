"""Multi-view scene datasets of the Lab rooms (GQN's data): views, cameras, factors, batches."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from envs.errors import ReprlError
from envs.lab.lab import AGENT_RADIUS, UNITS_PER_CELL, LabBatch
from envs.registry import make_lab_batch
from envs.rng import spawn_seeds
from envs.scenes import VIEWPOINT_NAMES, collect_scenes, viewpoint
from envs.storage.dataset import DatasetError, FrameDataset

ID = "reprl/LabCollectTrain-v0"
K = 4


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> FrameDataset:
    out = tmp_path_factory.mktemp("scenes") / "scenes.h5"
    return collect_scenes(ID, 10, out, views_per_scene=K, num_envs=4, seed=3, progress=False)


def _poses(vp: np.ndarray) -> np.ndarray:
    """Viewpoints back to (x, y, yaw, pitch) poses in map units and degrees."""
    yaw = np.degrees(np.arctan2(vp[:, 4], vp[:, 3])) % 360
    pitch = np.degrees(np.arctan2(vp[:, 6], vp[:, 5]))
    return np.stack([vp[:, 0] * UNITS_PER_CELL, vp[:, 1] * UNITS_PER_CELL, yaw, pitch], 1)


def test_layout_scene_major_with_k_views(scenes: FrameDataset) -> None:
    assert scenes.views_per_scene == K and scenes.num_scenes == 10 and len(scenes) == 10 * K
    np.testing.assert_array_equal(scenes.episode, np.repeat(np.arange(10), K))
    np.testing.assert_array_equal(scenes.step, np.tile(np.arange(K), 10))
    np.testing.assert_array_equal(scenes.array("dones"), np.tile(np.arange(K) == K - 1, 10))
    assert scenes.info.attrs["viewpoint_names"] == list(VIEWPOINT_NAMES)
    vp = scenes.viewpoints()
    assert vp.shape == (10 * K, 7) and vp.dtype == np.float32
    np.testing.assert_allclose(vp[:, 3] ** 2 + vp[:, 4] ** 2, 1, atol=1e-6)  # unit yaw
    np.testing.assert_allclose(vp[:, 5:], [[1.0, 0.0]] * len(vp), atol=1e-7)  # level by default
    np.testing.assert_allclose(vp[:, 2], 0.5)


def test_views_of_a_scene_share_the_world_and_differ_in_camera(scenes: FrameDataset) -> None:
    f = scenes.factors(["room_look", "obj_x", "obj_y", "obj_look", "agent_x", "agent_y"])
    for s in range(10):
        rows = slice(s * K, (s + 1) * K)
        for name in ("room_look", "obj_x", "obj_y", "obj_look"):
            assert (f[name][rows] == f[name][s * K]).all(), name
    # the camera is the agent's factor: its position, in map units, is the viewpoint's
    vp = scenes.viewpoints()
    np.testing.assert_array_equal(f["agent_x"], np.round(vp[:, 0] * UNITS_PER_CELL))
    np.testing.assert_array_equal(f["agent_y"], np.round(vp[:, 1] * UNITS_PER_CELL))
    assert len({tuple(r) for r in vp.round(4).tolist()}) > 10 * K // 2


def test_each_view_is_the_world_rendered_from_its_viewpoint(scenes: FrameDataset) -> None:
    """Rebuild the worlds from the recorded seeds and redraw every view from its viewpoint."""
    seeds = spawn_seeds(3, 4, purpose="scenes/0")
    b = make_lab_batch(ID, 4, seed=seeds)
    assert isinstance(b, LabBatch)
    vp, frames = scenes.viewpoints(), scenes.frames(slice(None))
    checked = 0
    for s in range(10):  # the collector resets all 4 worlds per round of 4 scenes
        if s % 4 == 0:
            b.reset(seeds) if s == 0 else b.reset()
        rows = slice(s * K, (s + 1) * K)
        poses = torch.as_tensor(_poses(vp[rows]))
        index = torch.full((K,), s % 4, dtype=torch.int64)
        got = b.render(index, poses).numpy()
        np.testing.assert_array_equal(got, frames[rows])
        checked += K
    assert checked == len(scenes)


def test_cameras_stand_where_the_agent_could(tmp_path) -> None:
    ds = collect_scenes(ID, 64, tmp_path / "s.h5", views_per_scene=2, num_envs=32, progress=False)
    f = ds.factors(["agent_x", "agent_y", "obj_x", "obj_y"])
    x, y = f["agent_x"], f["agent_y"]
    off_x, off_y = x % UNITS_PER_CELL, y % UNITS_PER_CELL
    assert off_x.min() >= AGENT_RADIUS and off_x.max() <= UNITS_PER_CELL - AGENT_RADIUS
    assert off_y.min() >= AGENT_RADIUS and off_y.max() <= UNITS_PER_CELL - AGENT_RADIUS
    b = LabBatch(1)  # a 7x7 room inside walls: free cells are rows and columns 1..7
    rows, cols = y // UNITS_PER_CELL, x // UNITS_PER_CELL
    assert not b.maps[0].walls[rows, cols].any()
    cell = rows * 100 + cols
    obj_cells = (f["obj_y"] // UNITS_PER_CELL) * 100 + f["obj_x"] // UNITS_PER_CELL
    assert not (cell[:, None] == obj_cells).any()  # never inside an object's cell


def test_pitch_is_recorded_and_drawn(tmp_path) -> None:
    ds = collect_scenes(
        ID, 8, tmp_path / "p.h5", views_per_scene=3, num_envs=8, max_pitch=30, progress=False
    )
    pitch = np.degrees(np.arctan2(ds.viewpoints()[:, 6], ds.viewpoints()[:, 5]))
    assert np.abs(pitch).max() <= 30 and np.abs(pitch).max() > 5
    b = make_lab_batch(ID, 8, seed=spawn_seeds(0, 8, purpose="scenes/0"))
    b.reset(spawn_seeds(0, 8, purpose="scenes/0"))
    poses = torch.as_tensor(_poses(ds.viewpoints(slice(0, 3))))
    got = b.render(torch.zeros(3, dtype=torch.int64), poses).numpy()
    np.testing.assert_array_equal(got, ds.frames(slice(0, 3)))


def test_same_seed_same_file_content(tmp_path) -> None:
    kw = dict(views_per_scene=3, num_envs=4, seed=9, progress=False)
    a = collect_scenes(ID, 6, tmp_path / "a.h5", **kw)
    b = collect_scenes(ID, 6, tmp_path / "b.h5", **kw)
    c = collect_scenes(ID, 6, tmp_path / "c.h5", **{**kw, "seed": 10})
    np.testing.assert_array_equal(a.frames(slice(None)), b.frames(slice(None)))
    np.testing.assert_array_equal(a.viewpoints(), b.viewpoints())
    assert not np.array_equal(a.viewpoints(), c.viewpoints())


def test_several_ids_are_domains(tmp_path) -> None:
    ids = ["reprl/LabCollectTrain-v0", "reprl/LabCollectTest-v0"]
    ds = collect_scenes(ids, 5, tmp_path / "d.h5", views_per_scene=2, num_envs=2, progress=False)
    np.testing.assert_array_equal(ds.domain, [0] * 6 + [1] * 4)  # 3 + 2 scenes
    np.testing.assert_array_equal(ds.episode, np.repeat(np.arange(5), 2))
    assert ds.info.domains == tuple(ids)


def test_iter_scenes_visits_every_scene_once_per_epoch(scenes: FrameDataset) -> None:
    seen = []
    for b in scenes.iter_scenes(3, seed=1, buffer_frames=2 * K):
        assert b["views"].shape == (3, K, 64, 64, 3) and b["viewpoints"].shape == (3, K, 7)
        for views, cams, s in zip(b["views"], b["viewpoints"], b["scene"]):
            np.testing.assert_array_equal(views, scenes.frames(slice(s * K, (s + 1) * K)))
            np.testing.assert_array_equal(cams, scenes.viewpoints(slice(s * K, (s + 1) * K)))
        seen += b["scene"].tolist()
    assert len(seen) == 9 and len(set(seen)) == 9  # 10 scenes, the last partial batch dropped
    epoch = lambda seed: [b["scene"].tolist() for b in scenes.iter_scenes(3, seed=seed)]  # noqa: E731
    assert epoch(1) == epoch(1)
    assert len({str(epoch(seed)) for seed in range(5)}) > 1  # the order follows the seed


def test_viewpoint_worked_by_hand() -> None:
    poses = torch.tensor([[150.0, 250.0, 90.0, 0.0], [100.0, 0.0, 180.0, 30.0]])
    np.testing.assert_allclose(
        viewpoint(poses).numpy(),
        [
            [1.5, 2.5, 0.5, 0.0, 1.0, 1.0, 0.0],
            [1.0, 0.0, 0.5, -1.0, 0.0, np.sqrt(3) / 2, 0.5],
        ],
        atol=1e-6,
    )


def test_trajectory_dataset_is_not_a_scene_dataset(tmp_path) -> None:
    from envs.exploration import collect

    ds = collect(ID, 64, tmp_path / "t.h5", num_envs=4, progress=False)
    assert ds.views_per_scene is None and ds.num_scenes == 0
    with pytest.raises(DatasetError, match="trajectories, not scenes"):
        next(ds.iter_scenes(2))


def test_bad_input(tmp_path, scenes: FrameDataset) -> None:
    out = tmp_path / "x.h5"
    with pytest.raises(ReprlError, match="camera"):
        collect_scenes("reprl/BreakoutStandard-v0", 4, out, progress=False)
    with pytest.raises(ReprlError, match="views_per_scene: expected an integer >= 2"):
        collect_scenes(ID, 4, out, views_per_scene=1, progress=False)
    with pytest.raises(ReprlError, match="num_scenes"):
        collect_scenes(ID, 0, out, progress=False)
    with pytest.raises(ReprlError, match="max_pitch"):
        collect_scenes(ID, 4, out, max_pitch=90, progress=False)
    with pytest.raises(ReprlError, match="frame_stack"):
        collect_scenes(ID, 4, out, env_kwargs={"frame_stack": 4}, progress=False)
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(DatasetError, match=r"batch_size: expected an integer in \[1, 10\]"):
        next(scenes.iter_scenes(11))


def test_a_killed_collection_leaves_no_dataset(tmp_path, monkeypatch) -> None:
    import envs.scenes as scenes_mod

    def boom(*a, **k):
        raise RuntimeError("killed")

    monkeypatch.setattr(scenes_mod, "_scene_block", boom)
    with pytest.raises(RuntimeError):
        collect_scenes(ID, 4, tmp_path / "k.h5", views_per_scene=2, progress=False)
    assert not (tmp_path / "k.h5").exists()
    assert not any(
        p.suffix == ".partial" or p.name.endswith(".partial") for p in tmp_path.iterdir()
    )


def test_file_records_viewpoints_as_an_array(scenes: FrameDataset) -> None:
    with h5py.File(scenes.path, "r") as f:
        assert f["viewpoints"].shape == (len(scenes), 7)
        assert int(f.attrs["views_per_scene"]) == K
