"""Device strings: parsed, of a type reprl runs on, and present on this machine."""

import pytest
import torch

from envs.devices import check_device
from envs.errors import ReprlError


def test_cpu_is_always_there() -> None:
    assert check_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("bad", ["tpu", "gpu", "", 3, None])
def test_unknown_devices_are_named(bad) -> None:
    with pytest.raises(ReprlError, match=r"mydev: expected a torch device, cpu, cuda"):
        check_device(bad, "mydev")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_is_refused_where_there_is_none_unless_it_runs_elsewhere() -> None:
    with pytest.raises(ReprlError, match=r"device: expected an available device, got 'cuda'.*cpu"):
        check_device("cuda")
    assert check_device("cuda:1", here=False) == torch.device("cuda:1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_index_beyond_the_machines_is_refused() -> None:
    n = torch.cuda.device_count()
    with pytest.raises(ReprlError, match=rf"expected one of cuda:0 .. cuda:{n - 1}"):
        check_device(f"cuda:{n}")
