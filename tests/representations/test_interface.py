"""The contract every registered representation meets; parametrised over the whole registry."""

from __future__ import annotations

import pytest
import torch

import representations
from representations import InputSpec, Representation, load, make_representation, registry

NAMES = registry.available()
B = 3


def _batch(spec: InputSpec, n: int = B, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *spec.shape), generator=g)


@pytest.fixture(params=NAMES)
def model(request: pytest.FixtureRequest) -> Representation:
    torch.manual_seed(0)
    return make_representation(request.param)


def test_builtin_methods_registered() -> None:
    assert {"beta_vae", "beta_vae_dae", "dae"} <= set(NAMES)


def test_default_build_is_64x64_rgb(model: Representation) -> None:
    assert model.input_spec == InputSpec(shape=(3, 64, 64), channel_order="RGB")
    assert model.input_spec.dtype == "float32"
    assert model.input_spec.value_range == (0.0, 1.0)
    assert isinstance(model.name, str) and registry.get_class(model.name) is type(model)


def test_config_is_json_plain_and_rebuilds(model: Representation) -> None:
    import json

    assert json.loads(json.dumps(model.config)) == model.config
    rebuilt = type(model)(**model.config)
    assert rebuilt.config == model.config
    assert rebuilt.input_spec == model.input_spec and rebuilt.latent_dim == model.latent_dim


def test_encode_shape_dtype(model: Representation) -> None:
    z = model.eval().encode(_batch(model.input_spec))
    assert z.shape == (B, model.latent_dim)
    assert z.dtype == torch.float32
    assert torch.isfinite(z).all()


def test_encode_deterministic_in_eval(model: Representation) -> None:
    model.eval()
    x = _batch(model.input_spec)
    with torch.no_grad():
        assert torch.equal(model.encode(x), model.encode(x))


def test_loss_finite_and_backpropagates(model: Representation) -> None:
    model.train()
    total, logs = model.loss(model.example_batch(B, torch.Generator().manual_seed(0)))
    assert total.dim() == 0 and torch.isfinite(total)
    assert "loss" in logs and all(isinstance(v, float) for v in logs.values())
    assert logs["loss"] == pytest.approx(float(total.detach()), rel=1e-6)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(bool((g != 0).any()) for g in grads)
    assert all(bool(torch.isfinite(g).all()) for g in grads)


def test_encode_accepts_uint8_frames_via_to_model_input(model: Representation) -> None:
    model.eval()
    c, h, w = model.input_spec.shape
    frames = torch.randint(0, 256, (B, h, w, c), dtype=torch.uint8)  # as envs give them
    x = model.to_model_input(frames)
    assert x.shape == (B, c, h, w) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    assert torch.equal(model.to_model_input(frames.numpy()), x)
    assert torch.equal(model.to_model_input(frames.permute(0, 3, 1, 2)), x)  # SB3 layout
    expected = frames.permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), model.encode(expected.contiguous()))


# (make the bad input from the spec, the expected fragment, the actual fragment)
BAD_INPUTS = {
    "channels": (lambda s: torch.rand(B, 1, s.height, s.width), "C=3", "C=1"),
    "height_width": (lambda s: torch.rand(B, s.channels, 32, 48), "64 x 64", "32 x 48"),
    "dtype": (lambda s: torch.rand(B, *s.shape, dtype=torch.float64), "float32", "float64"),
    "uint8": (lambda s: torch.zeros(B, *s.shape, dtype=torch.uint8), "float32", "uint8"),
    "unbatched": (lambda s: torch.rand(*s.shape), "(B, 3, 64, 64)", "(3, 64, 64)"),
    "range": (lambda s: torch.rand(B, *s.shape) * 255, "[0.0, 1.0]", "got ["),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_encode_rejects_wrong_input(model: Representation, case: str) -> None:
    make, expected, actual = BAD_INPUTS[case]
    with pytest.raises(ValueError, match="expected") as info:
        model.encode(make(model.input_spec))
    msg = str(info.value)
    assert expected in msg and actual in msg, msg


def test_encode_without_the_check_is_the_same_code(model: Representation) -> None:
    """``check=False`` (a training loop's trusted input) skips only the validation: the same
    code for valid input, and out-of-range input is no longer refused."""
    x = torch.rand(B, *model.input_spec.shape)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.encode(x, check=False), model.encode(x))
        model.encode(x * 2, check=False)  # the range check would refuse it
    with pytest.raises(ValueError, match="expected range"):
        model.encode(x * 2)


@pytest.mark.parametrize(
    ("bad", "fragments"),
    [
        (torch.zeros(B, 64, 64, 1, dtype=torch.uint8), ["(B, 64, 64, 3)", "(3, 64, 64, 1)"]),
        (torch.zeros(B, 32, 32, 3, dtype=torch.uint8), ["(B, 64, 64, 3)", "(3, 32, 32, 3)"]),
        (torch.zeros(B, 64, 64, 3), ["channels-first (B, 3, 64, 64)", "(3, 64, 64, 3)"]),
        (torch.zeros(B, 3, 64, 64, dtype=torch.float16), ["float32", "float16"]),
        (torch.zeros(64, 64, 3, dtype=torch.uint8), ["(B, 64, 64, 3)", "(64, 64, 3)"]),
    ],
    ids=["uint8_channels", "uint8_hw", "float_channels_last", "float16", "unbatched"],
)
def test_to_model_input_rejects_wrong_input(
    model: Representation, bad: torch.Tensor, fragments: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        model.to_model_input(bad)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_checkpoint_round_trip(model: Representation, tmp_path) -> None:
    path = tmp_path / f"{model.name}.safetensors"
    model.eval().save(path)
    loaded = load(path, expected_method=model.name)
    assert type(loaded) is type(model)
    assert not loaded.training
    assert loaded.config == model.config
    assert loaded.input_spec == model.input_spec and loaded.latent_dim == model.latent_dim
    x = _batch(model.input_spec)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x))
    want = model.state_dict()
    got = loaded.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError, match="unknown representation 'nope'") as info:
        make_representation("nope")
    for name in NAMES:
        assert name in str(info.value)


def test_unknown_config_key_is_named() -> None:
    with pytest.raises(ValueError, match="latnet_dim"):
        make_representation("beta_vae", latnet_dim=3)


def test_register_refuses_duplicate_name() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @registry.register
        class Impostor(representations.BetaVAE):
            name = "beta_vae"


def test_input_spec_dict_round_trip() -> None:
    spec = InputSpec(shape=(1, 32, 48), channel_order="L")
    assert InputSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="channel_order 'RGB' names 3 channels"):
        InputSpec(shape=(1, 64, 64), channel_order="RGB")
