"""RMSProp with statistics in shared memory: the one optimiser every A3C worker steps.

Mnih et al. (2016), "Asynchronous Methods for Deep Reinforcement Learning", section 4 and
supplement 7 ("Shared RMSProp"): the running average of squared gradients ``g`` is shared by all
actor-learners and updated without locks,

    g <- alpha * g + (1 - alpha) * grad ** 2
    theta <- theta - lr * grad / (sqrt(g) + eps)

which is ``torch.optim.RMSprop`` without momentum or centring (SB3's A2C optimiser, with
``eps`` added after the square root as torch does). :class:`SharedRMSprop` is that optimiser
with its state created up front and moved to shared memory, so a ``spawn``-ed worker that
receives it (pickled by ``torch.multiprocessing``) updates the same ``g`` as every other worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor


class SharedRMSprop(torch.optim.RMSprop):
    """``torch.optim.RMSprop`` (no momentum, not centred) with shared, eagerly built state.

    State per trainable parameter: ``square_avg`` (same shape as the parameter, float32, >= 0)
    and ``step`` (a 0-d float32 tensor counting the updates it received). Parameters with
    ``requires_grad=False`` (a frozen encoder) get no state and are never changed. The state
    dict has ``torch.optim.RMSprop``'s layout, so SB3 saves it and a plain ``RMSprop`` loads it.

    Args:
        params: The global model's parameters (in shared memory), in ``policy.parameters()``
            order (the order of SB3's own optimiser, whose state dict this one loads).
        lr: Step size, > 0 (workers may set ``param_groups[i]["lr"]`` before each step).
        alpha: Decay of the squared-gradient average, in [0, 1).
        eps: Added to ``sqrt(square_avg)``, > 0.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 7e-4,
        alpha: float = 0.99,
        eps: float = 1e-5,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=0.0,
            momentum=0.0,
            centered=False,
            foreach=False,
        )
        self.init_state()

    def init_state(self) -> None:
        """Create the missing state of every trainable parameter (zeros), normalise ``step``
        to a 0-d float32 tensor (a loaded state dict may hold a number)."""
        for group in self.param_groups:
            for p in group["params"]:
                if not p.requires_grad:
                    continue
                state = self.state[p]
                if "square_avg" not in state:
                    state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                step = state.get("step", 0.0)
                if not (
                    isinstance(step, Tensor) and step.dtype == torch.float32 and step.dim() == 0
                ):
                    state["step"] = torch.tensor(float(step), dtype=torch.float32)

    def share_memory(self) -> SharedRMSprop:
        """Move every state tensor to shared memory (a no-op for CUDA tensors, which
        ``torch.multiprocessing`` shares by IPC handle); returns ``self``."""
        for state in self.state.values():
            for value in state.values():
                if isinstance(value, Tensor):
                    value.share_memory_()
        return self

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``torch.optim.RMSprop.load_state_dict``, then :meth:`init_state` (the tensors are
        new: call :meth:`share_memory` again before handing the optimiser to workers)."""
        super().load_state_dict(state_dict)
        self.init_state()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter that has a gradient, in place on the shared tensors.

        No lock is taken: concurrent workers may interleave their updates (Hogwild, as in the
        paper).

        Args:
            closure: Recomputes the loss (optional, as in torch).

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state[p]
                square_avg = state["square_avg"]
                square_avg.mul_(alpha).addcmul_(grad, grad, value=1.0 - alpha)
                p.addcdiv_(grad, square_avg.sqrt().add_(eps), value=-lr)
                state["step"].add_(1.0)
        return loss
