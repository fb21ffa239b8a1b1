"""Probe glue: which factor entries count as absent; frames that do not fit the encoder."""

import numpy as np
import pytest

from envs.errors import ReprlError
from envs.exploration import collect
from representations import InputSpec, check_frame_shape, make_representation
from representations.analysis import _absent, probe


def test_absent_follows_the_objects_x_position() -> None:
    columns = ["ball_x[0]", "ball_vx[0]", "ball_x[1]", "ball_vx[1]", "lives", "wall_x", "wall_y"]
    values = np.array(
        [
            [10, -1, -1, -1, -1, 23, 29],  # ball 1 absent; vx=-1 of ball 0 is a real value
            [12, 1, 40, -1, 2, -1, -1],  # no middle wall
        ]
    )
    expected = np.array(
        [
            [False, False, True, True, False, False, False],
            [False, False, False, False, False, True, True],
        ]
    )
    np.testing.assert_array_equal(_absent(columns, values), expected)


def test_frames_that_do_not_fit_the_encoder_are_refused(tmp_path) -> None:
    data = tmp_path / "d.h5"
    collect("reprl/BreakoutStandard-v0", 32, data, num_envs=4, progress=False)
    model = make_representation("beta_vae", input_shape=(1, 64, 64), latent_dim=4)
    with pytest.raises(
        ReprlError,
        match=r"dataset .*d\.h5 has frames \(H, W, C\) = \(64, 64, 3\) \(3 channel\(s\)\); the "
        r"model expects \(C, H, W\) = \(1, 64, 64\) \(L\).*input_shape=\[3, 64, 64\]",
    ):
        probe(model, data)


def test_check_frame_shape() -> None:
    spec = InputSpec.for_shape((3, 64, 64))
    check_frame_shape(spec, (64, 64, 3), "env")  # fits: no error
    with pytest.raises(ReprlError, match=r"env has frames \(H, W, C\) = \(32, 64, 3\)"):
        check_frame_shape(spec, (32, 64, 3), "env")
    with pytest.raises(ReprlError, match=r"env: expected frames of shape \(H, W, C\), got"):
        check_frame_shape(spec, (64, 64), "env")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> str:
    from envs.scenes import collect_scenes

    path = tmp_path_factory.mktemp("scenes") / "s.h5"
    collect_scenes(
        "reprl/LabCollectTrain-v0", 5, path, views_per_scene=4, num_envs=5, progress=False
    )
    return str(path)


def test_rendering_scores_baseline_worked_by_hand(scenes: str) -> None:
    """The baseline is the mean image of the context views against the last view; the model's
    error is its render's, both averaged over scenes."""
    import torch

    from envs.storage.dataset import FrameDataset
    from representations.analysis import rendering_scores

    torch.manual_seed(0)
    model = make_representation("gqn").eval()
    got = rendering_scores(model, scenes, context=2, batch_size=2)
    ds = FrameDataset(scenes)
    views = ds.frames(slice(None)).reshape(5, 4, 64, 64, 3).astype(np.float64) / 255
    cams = torch.from_numpy(ds.viewpoints().reshape(5, 4, 7))
    ds.close()
    baseline = ((views[:, :2].mean(1) - views[:, 3]) ** 2).mean()
    x = torch.from_numpy(views).float().permute(0, 1, 4, 2, 3)
    with torch.no_grad():
        pred = model.render(x[:, :2], cams[:, :2], cams[:, 3]).permute(0, 2, 3, 1).numpy()
    assert got["scenes"] == 5 and got["context_views"] == 2
    assert got["baseline_mse"] == pytest.approx(baseline, rel=1e-5)
    assert got["mse"] == pytest.approx(((pred - views[:, 3]) ** 2).mean(), rel=1e-4)
    assert got["ratio"] == pytest.approx(got["mse"] / got["baseline_mse"])
    assert rendering_scores(model, scenes)["context_views"] == 3  # max_context 5, K - 1 = 3
    with pytest.raises(ReprlError, match="context: expected 1 to 3 views"):
        rendering_scores(model, scenes, context=4)


def test_rendering_needs_a_scene_model_and_scenes(scenes: str, tmp_path) -> None:
    from envs.storage.dataset import DatasetError
    from representations.analysis import rendering_scores

    with pytest.raises(ReprlError, match="does not render scenes"):
        rendering_scores(make_representation("beta_vae"), scenes)
    data = tmp_path / "t.h5"
    collect("reprl/LabCollectTrain-v0", 32, data, num_envs=4, progress=False)
    with pytest.raises(DatasetError, match="trajectories, not scenes"):
        rendering_scores(make_representation("gqn"), data)


def test_pictures_of_a_scene_model(scenes: str, tmp_path) -> None:
    """One row per scene: its 3 context views, a gap, the rendered and the true last view."""
    from PIL import Image

    from representations.analysis import pictures

    written = pictures(make_representation("gqn"), scenes, tmp_path, num_frames=2, scale=1)
    assert list(written) == ["rendering"]
    w, h = Image.open(written["rendering"]).size
    assert (w, h) == (6 * 65 + 1, 2 * 65 + 1)
