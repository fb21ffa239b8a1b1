"""PretrainedEncoderExtractor: pretrained weights survive SB3, frozen stays frozen, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from torch import nn

import envs
import representations as R
from agents import (
    LatentProjectionExtractor,
    MissingFileError,
    PretrainedEncoderExtractor,
    extractor_kwargs,
    make_agent,
    representation_from_header,
)
from envs.errors import ReprlError
from representations import CheckpointError
from tests.agents.conftest import TINY

SPACE = gym.spaces.Box(0, 255, (3, 64, 64), np.uint8)
PPO_TINY = {"n_steps": 16, "batch_size": 16, "n_epochs": 2}


def _policy(ckpt: Path, mode: str, extractor=PretrainedEncoderExtractor, **kwargs):
    return ActorCriticCnnPolicy(
        SPACE,
        gym.spaces.Discrete(3),
        lambda _: 3e-4,
        features_extractor_class=extractor,
        features_extractor_kwargs=extractor_kwargs(ckpt, mode),
        **kwargs,
    )


def _equal_state(a: nn.Module, b: dict[str, torch.Tensor]) -> bool:
    sa = a.state_dict()
    return sa.keys() == b.keys() and all(torch.equal(sa[k], b[k]) for k in b)


def _extractors(policy: ActorCriticCnnPolicy) -> list[PretrainedEncoderExtractor]:
    found = [policy.features_extractor, policy.pi_features_extractor, policy.vf_features_extractor]
    return list({id(e): e for e in found}.values())


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
@pytest.mark.parametrize("share", [True, False])
def test_pretrained_weights_survive_ortho_init(ckpt: Path, mode: str, share: bool) -> None:
    policy = _policy(ckpt, mode, ortho_init=True, share_features_extractor=share)
    ref = R.load(ckpt).state_dict()
    extractors = _extractors(policy)
    assert len(extractors) == (1 if share else 2)
    for ext in extractors:
        assert ext.mode == mode
        assert _equal_state(ext.encoder, ref)


def test_ortho_init_trap_is_real(ckpt: Path) -> None:
    """Without the ``apply`` override SB3's orthogonal init overwrites the pretrained weights."""

    class Naive(PretrainedEncoderExtractor):
        def apply(self, fn):
            for p in self.encoder.parameters():
                p.data = p.data.contiguous()  # orthogonal_ cannot view channels-last weights
            return nn.Module.apply(self, fn)

    policy = _policy(ckpt, "frozen", extractor=Naive)
    assert not _equal_state(policy.features_extractor.encoder, R.load(ckpt).state_dict())


def test_scratch_is_randomly_initialised(ckpt: Path) -> None:
    policy = _policy(ckpt, "scratch")  # ortho_init on channels-last conv weights must not fail
    enc = policy.features_extractor.encoder
    ref = R.load(ckpt)
    assert type(enc) is type(ref) and enc.config == ref.config
    w = enc.encoder.convs[0].weight
    assert not torch.equal(w, ref.encoder.convs[0].weight)
    assert w.is_contiguous(memory_format=torch.channels_last)
    # SB3's init: orthogonal rows (flattened), zero biases
    flat = w.detach().reshape(w.shape[0], -1)
    gram = flat @ flat.T
    assert torch.allclose(gram, gram.diag().diag(), atol=1e-4)
    assert torch.count_nonzero(enc.encoder.convs[0].bias) == 0
    assert all(p.requires_grad for p in enc.encoder.parameters())


def test_modes_set_gradients_and_eval(ckpt: Path) -> None:
    frozen = PretrainedEncoderExtractor(SPACE, str(ckpt), "frozen")
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    frozen.train(True)
    assert frozen.training and not frozen.encoder.training
    assert not any(m.training for m in frozen.encoder.modules())
    tuned = PretrainedEncoderExtractor(SPACE, str(ckpt), "finetune", features_dim=5)
    assert all(p.requires_grad for p in tuned.encoder.parameters())
    assert tuned.encoder.training
    assert tuned.features_dim == 5 and frozen.features_dim == TINY["latent_dim"]
    x = torch.rand(4, *SPACE.shape)
    assert tuned(x).shape == (4, 5) and (tuned(x) >= 0).all()
    z = frozen(x)
    assert z.shape == (4, TINY["latent_dim"]) and not z.requires_grad
    assert torch.equal(z, R.load(ckpt).encode(x).detach())


def _record_encoder_modes(model) -> list[bool]:
    seen: list[bool] = []
    for ext in _extractors(model.policy):
        rep = ext.encoder
        rep.encoder.register_forward_hook(lambda m, i, o, rep=rep: seen.append(rep.training))
    return seen


def test_frozen_encoder_stays_in_eval_mode_and_unchanged_through_learn(ckpt: Path) -> None:
    env = envs.make_vec("reprl/BreakoutStandard-v0", 2, seed=0)
    model = make_agent("ppo", env, encoder=ckpt, mode="frozen", fast=False, seed=0, **PPO_TINY)
    seen = _record_encoder_modes(model)
    head = {k: v.clone() for k, v in model.policy.mlp_extractor.state_dict().items()}
    model.learn(64)
    assert len(seen) > 0 and not any(seen)
    assert _equal_state(model.policy.features_extractor.encoder, R.load(ckpt).state_dict())
    assert not _equal_state(model.policy.mlp_extractor, head)


def test_finetuned_encoder_trains(ckpt: Path) -> None:
    env = envs.make_vec("reprl/BreakoutStandard-v0", 2, seed=0)
    model = make_agent("ppo", env, encoder=ckpt, mode="finetune", seed=0, **PPO_TINY)
    seen = _record_encoder_modes(model)
    assert _equal_state(model.policy.features_extractor.encoder, R.load(ckpt).state_dict())
    model.learn(64)
    assert any(seen) and not all(seen)  # trained in train mode, collected in eval mode
    enc = model.policy.features_extractor.encoder
    ref = R.load(ckpt)
    assert not torch.equal(enc.encoder.fc.weight, ref.encoder.fc.weight)
    assert not torch.equal(enc.encoder.convs[0].weight, ref.encoder.convs[0].weight)


def test_frozen_with_separate_extractors_learns(ckpt: Path) -> None:
    env = envs.make_vec("reprl/BreakoutStandard-v0", 2, seed=0)
    model = make_agent(
        "a2c",
        env,
        encoder=ckpt,
        mode="frozen",
        fast=False,
        seed=0,
        n_steps=8,
        policy_kwargs={"share_features_extractor": False},
    )
    model.learn(32)
    ref = R.load(ckpt).state_dict()
    for ext in _extractors(model.policy):
        assert _equal_state(ext.encoder, ref) and not ext.encoder.training


def test_extractor_kwargs_are_json_plain(ckpt: Path) -> None:
    kw = extractor_kwargs(ckpt, "finetune", features_dim=16)
    assert json.loads(json.dumps(kw)) == kw
    assert kw["checkpoint"] == str(ckpt.resolve())
    assert kw["mode"] == "finetune" and kw["features_dim"] == 16 and kw["frame_stack"] is None
    kw4 = extractor_kwargs(ckpt, frame_stack=4)
    assert json.loads(json.dumps(kw4)) == kw4 and kw4["frame_stack"] == 4
    assert kw["encoder_header"]["method"] == "beta_vae"
    assert kw["encoder_header"]["latent_dim"] == TINY["latent_dim"]


def test_header_only_builds_the_architecture(ckpt: Path) -> None:
    kw = extractor_kwargs(ckpt)
    ckpt.unlink()
    ext = PretrainedEncoderExtractor(SPACE, **kw)  # file gone: build from the header
    assert ext.encoder.config == kw["encoder_header"]["config"]
    assert ext.features_dim == TINY["latent_dim"]
    ext2 = PretrainedEncoderExtractor(SPACE, None, "frozen", None, kw["encoder_header"])
    assert ext2.encoder_header == ext.encoder_header
    assert representation_from_header(kw["encoder_header"]).latent_dim == TINY["latent_dim"]


def test_latent_projection_extractor() -> None:
    space = gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)
    ext = LatentProjectionExtractor(space, 4)
    assert ext(torch.randn(3, 8)).shape == (3, 4)
    assert [n for n, _ in ext.named_parameters()] == ["projection.0.weight", "projection.0.bias"]
    with pytest.raises(ValueError, match="latents"):
        LatentProjectionExtractor(SPACE, 4)


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (gym.spaces.Box(0, 255, (3, 32, 32), np.uint8), r"shape.*\(3, 64, 64\).*\(3, 32, 32\)"),
        (gym.spaces.Box(0, 255, (1, 64, 64), np.uint8), r"channels.*C=3 \(RGB\).*C=1"),
        (gym.spaces.Box(0, 255, (4, 64, 64), np.uint8), r"channels.*C=3 \(RGB\).*got C=4"),
        (gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), r"channels-first.*channels-last"),
        (gym.spaces.Box(0, 1, (3, 64, 64), np.float32), r"dtype: expected uint8.*float32"),
        (gym.spaces.Box(0, 100, (3, 64, 64), np.uint8), r"range.*\[0, 255\].*high 100"),
        (gym.spaces.Box(0, 1, (8,), np.float32), r"space: expected uint8 images"),
    ],
)
def test_refuses_mismatched_observation_space(ckpt: Path, space: gym.Space, match: str) -> None:
    with pytest.raises(ReprlError, match=match):
        PretrainedEncoderExtractor(space, str(ckpt))


def test_refuses_bad_arguments(ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"mode: expected one of \['frozen'.*got 'pixels'"):
        PretrainedEncoderExtractor(SPACE, str(ckpt), "pixels")
    with pytest.raises(ValueError, match=r"features_dim: expected a positive int.*got 0"):
        PretrainedEncoderExtractor(SPACE, str(ckpt), features_dim=0)
    with pytest.raises(ValueError, match="expected a checkpoint or an encoder_header"):
        PretrainedEncoderExtractor(SPACE)
    with pytest.raises(ReprlError, match=r"frame_stack: expected an integer >= 1.*got 0"):
        PretrainedEncoderExtractor(SPACE, str(ckpt), frame_stack=0)
    with pytest.raises(ReprlError, match=r"C=3 \(RGB\) x frame_stack 2 = 6 channels.*got C=3"):
        PretrainedEncoderExtractor(SPACE, str(ckpt), frame_stack=2)
    with pytest.raises(MissingFileError, match="no encoder_header"):
        PretrainedEncoderExtractor(SPACE, str(tmp_path / "missing.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a reprl checkpoint"):
        PretrainedEncoderExtractor(SPACE, str(junk))


def test_refuses_a_checkpoint_that_is_not_the_headers_encoder(ckpt: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.safetensors"
    R.make_representation("beta_vae", **{**TINY, "latent_dim": 4}).save(other)
    header = extractor_kwargs(other)["encoder_header"]
    with pytest.raises(CheckpointError, match=r"another encoder.*'latent_dim': 4.*'latent_dim': 8"):
        PretrainedEncoderExtractor(SPACE, str(ckpt), encoder_header=header)
    with pytest.raises(CheckpointError, match="not registered"):
        representation_from_header({**header, "method": "nope"})
    with pytest.raises(CheckpointError, match=r"missing \['latent_dim'\]"):
        representation_from_header({k: v for k, v in header.items() if k != "latent_dim"})


# ---------------------------------------------------------------- temporal context


@pytest.mark.parametrize("mode", ["frozen", "finetune", "scratch"])
def test_stacked_frames_are_encoded_one_by_one_in_one_call(ckpt: Path, mode: str) -> None:
    k, b = 3, 4
    space = gym.spaces.Box(0, 255, (3 * k, 64, 64), np.uint8)
    ext = PretrainedEncoderExtractor(space, **extractor_kwargs(ckpt, mode, features_dim=None))
    assert ext.frame_stack == k and ext.features_dim == k * TINY["latent_dim"]
    calls: list[int] = []
    ext.encoder.encoder.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    x = torch.rand(b, 3 * k, 64, 64)
    ext.eval()
    with torch.no_grad():
        z = ext(x)
    assert calls == [b * k]  # one batched call over every frame of the batch
    enc = ext.encoder
    with torch.no_grad():  # independently: frame j is channels 3j..3j+2, oldest first
        expected = torch.cat([enc.encode(x[:, 3 * j : 3 * j + 3]) for j in range(k)], dim=1)
    torch.testing.assert_close(z, expected, atol=1e-5, rtol=0)


def test_stacked_projection_and_inferred_or_explicit_k(ckpt: Path, gray_ckpt: Path) -> None:
    space = gym.spaces.Box(0, 255, (4, 64, 64), np.uint8)  # grayscale x 4
    ext = PretrainedEncoderExtractor(space, str(gray_ckpt), features_dim=5)
    assert ext.frame_stack == 4 and ext.projection[0].in_features == 4 * TINY["latent_dim"]
    assert ext(torch.rand(2, 4, 64, 64)).shape == (2, 5)
    explicit = PretrainedEncoderExtractor(space, str(gray_ckpt), frame_stack=4)
    assert explicit.features_dim == 4 * TINY["latent_dim"]
    with pytest.raises(ReprlError, match=r"C=1 \(L\) x frame_stack 2 = 2 channels.*got C=4"):
        PretrainedEncoderExtractor(space, str(gray_ckpt), frame_stack=2)


def test_kwargs_without_frame_stack_still_build(ckpt: Path) -> None:
    """Zips saved before frame stacking have no frame_stack kwarg: k = 1 from the channels."""
    kw = extractor_kwargs(ckpt)
    del kw["frame_stack"]
    ext = PretrainedEncoderExtractor(SPACE, **kw)
    assert ext.frame_stack == 1 and ext.features_dim == TINY["latent_dim"]


# ---------------------------------------------------------------- every registered method


@pytest.mark.parametrize("method", R.available())
def test_every_registered_method_plugs_in_frozen_and_finetuned(method: str, tmp_path: Path) -> None:
    """Any method of the registry, GQN and CPC included, is an extractor with no special case:
    its checkpoint's weights arrive intact, ``finetune`` trains its encoding path, ``frozen``
    gets no gradient and stays in eval mode."""
    torch.manual_seed(0)
    model = R.make_representation(method)
    path = tmp_path / f"{method}.safetensors"
    model.save(path)
    x = torch.rand(2, 3, 64, 64)  # SB3 hands extractors images scaled to [0, 1]
    for mode in ("frozen", "finetune"):
        ext = PretrainedEncoderExtractor(SPACE, **extractor_kwargs(path, mode))
        assert _equal_state(ext.encoder, model.state_dict())
        ext.train()
        out = ext(x)
        assert out.shape == (2, model.latent_dim) and torch.isfinite(out).all()
        if mode == "frozen":
            assert not out.requires_grad and not ext.encoder.training
            assert not any(p.requires_grad for p in ext.encoder.parameters())
        else:
            out.pow(2).sum().backward()
            grads = [p.grad for p in ext.encoder.parameters() if p.grad is not None]
            assert any(bool(g.abs().sum() > 0) for g in grads)
