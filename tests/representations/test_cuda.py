"""Every registered representation on a CUDA device: the CPU's codes, a training step, and a
pretraining run whose checkpoint loads on the CPU with the same codes. Skipped without CUDA (CI
has none); run with ``pytest -m cuda``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import representations as R
from envs.exploration import collect
from representations.pretrain import PretrainConfig, pretrain

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("name", R.available())
def test_cuda_encode_matches_cpu_and_trains(name: str) -> None:
    torch.manual_seed(0)
    model = R.make_representation(name).eval()
    x = torch.rand((4, *model.input_spec.shape), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z_cpu = model.encode(x)
        z_cuda = model.to("cuda").encode(x.to("cuda")).cpu()
    torch.testing.assert_close(z_cuda, z_cpu, atol=1e-4, rtol=1e-3)
    model.train()
    batch = {k: v.to("cuda") for k, v in model.example_batch(2).items()}
    loss, _ = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_pretrain_on_cuda_loads_on_cpu(tmp_path: Path) -> None:
    data = tmp_path / "d.h5"
    collect("reprl/BreakoutStandard-v0", 600, data, num_envs=4, progress=False)
    cfg = PretrainConfig(
        method="beta_vae",
        model={"latent_dim": 8},
        dataset=str(data),
        out=str(tmp_path / "run"),
        steps=6,
        batch_size=8,
        device="cuda",
    )
    path = pretrain(cfg, progress=False)
    cpu = R.load(path, device="cpu").eval()
    gpu = R.load(path, device="cuda").eval()
    x = torch.rand((4, *cpu.input_spec.shape), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(gpu.encode(x.cuda()).cpu(), cpu.encode(x), atol=1e-4, rtol=1e-3)
