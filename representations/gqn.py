"""GQN: the Generative Query Network (Eslami et al., 2018, "Neural scene representation and
rendering").

A scene is seen from ``K`` cameras. Each view ``x_k`` ``(C, H, W)`` comes with its 7-d viewpoint
``v_k = (x, y, z, cos yaw, sin yaw, cos pitch, sin pitch)`` (the data provider's units, taken as
given). GQN learns

- a **representation network** ``f``: ``r = sum_k f(x_k, v_k)`` over the context views of a
  scene (a sum: the order and the number of views do not matter, and more views add
  evidence), and
- a **generator** ``g``: a conditional ConvDRAW that renders the view of the scene from a query
  viewpoint ``v_q``, given ``r``.

Training picks, per batch, a number ``M`` of context views, uniform in
``[1, min(K - 1, max_context)]``, and per scene one random query view and ``M`` other random
context views (the query is never a context view), and minimises the negative ELBO of the query
view::

    loss = NLL + KL,   NLL = -log N(x_q; mu(u_L), sigma_t^2 I)   summed over pixels,
                       KL  = sum_l KL(q(z_l | x_q, v_q, r, ...) || pi(z_l | v_q, r, z_<l))

both per scene, averaged over the batch, in nats. The pixel standard deviation is annealed
linearly, as in the paper, ``sigma_t = max(sigma_f + (sigma_i - sigma_f) (1 - t / n), sigma_f)``
with ``t`` the number of training steps taken (a persistent buffer, ``step``: it is saved in
checkpoints and resumed runs, and counts the calls of :meth:`GQN.loss` in training mode) and
``n = anneal_steps``. The NLL is the full Gaussian one, constants included.

Representation network (the paper's figure S1, every width a constructor argument; ``k`` is
``tower_channels``, all convolutions followed by a ReLU)::

    x (C, H, W) -> conv 2x2/2 (k) -> a (k, H/2, W/2)
    a -> conv 2x2/2 (k) -> b ;  a -> conv 3x3 (k/2) -> conv 2x2/2 (k) -> + b   (k, H/4, W/4)
    cat(., v tiled) -> conv 3x3 (k) -> c ;  -> conv 3x3 (k/2) -> conv 3x3 (k) -> + c
    -> conv 1x1 (r_dim)                                   "tower": r (r_dim, H/4, W/4)
    -> mean over space                                    "pool":  r (r_dim, 1, 1)

Generator (ConvDRAW, Gregor et al. 2016, as GQN uses it): ``L`` steps of two convolutional LSTM
cores on the ``H/4 x W/4`` grid. With ``h^g_0 = h^e_0 = c_0 = 0`` and the canvas ``u_0 = 0``::

    prior     pi_l = N(mu, exp(logvar)) = eta_pi(h^g_{l-1})          z_l: (z_dim, H/4, W/4)
    inference (c^e_l, h^e_l) = C^e(x_q, v_q, r, h^g_{l-1}, u_{l-1}, state^e_{l-1})
    posterior q_l  = eta_e(h^e_l);   z_l ~ q_l  (training),  z_l ~ pi_l or its mean (rendering)
    generator (c^g_l, h^g_l) = C^g(v_q, r, z_l, state^g_{l-1})
    canvas    u_l = u_{l-1} + Delta(h^g_l)            Delta: transposed conv 4x4/4, linear
    image     mean = sigmoid(eta_g(u_L))              eta_g: 1x1 conv to C channels

``v_q`` and ``r`` enter the cores tiled over the grid (a ``"pool"`` r of one pixel is tiled
like ``v_q``), with two coordinate channels (x and y in ``[-1, 1]``) so that a tiled ``r`` can
still place things. The cores' gates are one convolution over the concatenation of their
inputs; it is computed as two (one over the inputs that are the same at every step, computed
once per rendering when the cores share weights, and one over what changes), which is the same
function. The prior's and the posterior's log-variances are squashed smoothly into
``(-15, 15)`` (:func:`representations.beta_vae.bound_logvar`). Departures from the paper (as
its reimplementations read it), all cheaper, the first two no less expressive:

- ``Delta`` is linear and shared by all steps, so ``u_l = Delta(s_l)`` with ``s_l`` the sum of
  the generator states so far, and the canvas meets nothing but the linear ``eta_g``: the
  image is ``sigmoid(Gamma(s_L))`` with ``Gamma = eta_g . Delta`` one linear map from each
  grid cell's ``h_dim`` channels to its ``4 x 4`` block of ``C`` pixels (a transposed 4x4
  stride-4 convolution, learned directly; the paper factors it through a canvas of many
  channels, 128 in reimplementations, which a linear map cannot make more expressive). The
  inference core reads ``s_{l-1}`` (at ``H/4 x W/4``) where the paper reads ``u_{l-1}``
  downsampled by a learned 4x4 stride-4 convolution (a linear map of ``s_{l-1}`` that the
  core's own convolution can absorb);
- the inference core reads ``x_q`` as its 4x4 pixel blocks stacked in channels (pixel
  unshuffle, ``16 C`` channels at ``H/4 x W/4``, lossless) where the paper downsamples it with a
  learned 4x4 stride-4 convolution to ``C`` channels;
- the coordinate channels stand in for the learned 16x16 transposed convolutions that some
  reimplementations use to broadcast a pooled ``r`` (paper unclear).

The mean image is squashed by a sigmoid into ``[0, 1]``.

Encoding for an agent (:meth:`GQN.encode`): an agent sees one view and may not know its pose,
so ``encode(obs)`` is the representation of that single view with the all-zero viewpoint, the
"unknown pose" token (never a real pose: cosine and sine cannot both be 0), pooled over space:
``encode(obs) = mean_space f(obs, 0)``, ``(B, r_dim)``. For ``"pool"`` that is exactly the ``r``
the generator is trained on; for ``"tower"`` it is the spatial average of the ``(r_dim, H/4,
W/4)`` map (a summary the generator never sees as such). To put that input in distribution,
training replaces each context viewpoint by the token with probability ``pose_dropout``
(default 0.25; never in eval mode, never for the query, whose pose the generator must know).

:data:`PAPER_CONFIG` is the paper's configuration, as far as it could be checked (see there);
the class defaults are a CPU-sized version of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from envs.errors import ReprlError
from representations.base import InputSpec, Representation
from representations.batches import SCENES
from representations.beta_vae import bound_logvar
from representations.config import MethodConfig, configured
from representations.gqn_networks import VIEWPOINT_DIM as VIEWPOINT_DIM
from representations.gqn_networks import ConvLSTMCore as ConvLSTMCore
from representations.gqn_networks import RepresentationNetwork as RepresentationNetwork
from representations.gqn_networks import gaussian_kl_between as gaussian_kl_between
from representations.probing import ScoreContext, fresh_rendering_scores
from representations.registry import register

RepresentationKind = Literal["pool", "tower"]
_KINDS: tuple[str, ...] = get_args(RepresentationKind)

#: The generator works at ``1 / SCALE`` of the image resolution.
SCALE = 4

#: The paper's configuration (Eslami et al. 2018, supplementary figures S1, S2 and section 3)
#: as constructor keyword arguments, ``GQN(**PAPER_CONFIG)``: the tower representation
#: (256 channels, r 256 x 16 x 16), L = 12 generation steps with cores of 128 channels and
#: 5x5 kernels, not sharing weights across steps (its canvas is folded into one linear map,
#: see the module docstring), pixel sigma annealed from 2.0 to 0.7 over 2e5 steps.
#: Unsure (the paper is terse; reimplementations disagree): ``z_dim`` (3 channels per step in
#: the reimplementation that follows figure S2 module by module, 64 in another),
#: ``shared_core`` (False here), ``max_context`` (the datasets' context sizes differ: 5 views
#: for the rooms, up to 15 for Shepard-Metzler and 20 for the labyrinths; 5 here),
#: ``representation`` ("tower" gave the paper's best renderings; "pool" its more
#: viewpoint-invariant r). ``pose_dropout`` is ours (0: the paper always knew the poses).
#: Training (not constructor arguments): :data:`PAPER_TRAINING`.
PAPER_CONFIG: dict[str, Any] = {
    "input_shape": [3, 64, 64],
    "representation": "tower",
    "r_dim": 256,
    "tower_channels": 256,
    "h_dim": 128,
    "z_dim": 3,
    "generation_steps": 12,
    "kernel_size": 5,
    "shared_core": False,
    "sigma_i": 2.0,
    "sigma_f": 0.7,
    "anneal_steps": 200_000,
    "max_context": 5,
    "pose_dropout": 0.0,
}

#: The paper's optimiser (recorded, not applied by this module): Adam (beta1 0.9, beta2 0.999,
#: eps 1e-8), learning rate annealed linearly from 5e-4 to 5e-5 over 1.6e6 steps
#: (``max(mu_f + (mu_i - mu_f) (1 - t / n), mu_f)``), batches of 36 scenes, about 2e6 steps.
PAPER_TRAINING: dict[str, Any] = {
    "optimizer": "adam",
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "lr_i": 5e-4,
    "lr_f": 5e-5,
    "lr_anneal_steps": 1_600_000,
    "batch_size": 36,
    "steps": 2_000_000,
}

_LOG_2PI = math.log(2.0 * math.pi)


def _int_arg(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ReprlError(f"{what}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _float_arg(value: Any, what: str, low: float, high: float | None = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if (
        isinstance(value, bool)
        or not math.isfinite(v)
        or v < low
        or (high is not None and v > high)
    ):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ReprlError(f"{what}: expected a finite number {bound}, got {value!r}")
    return v


@dataclass(frozen=True)
class GQNConfig(MethodConfig):
    """The configuration of a :class:`GQN` (its constructor's arguments).

    The defaults are CPU-sized (see :class:`GQN`); :data:`PAPER_CONFIG` is the paper's.

    Attributes:
        input_shape: ``(C, H, W)``; C is 1 (``"L"``) or 3 (``"RGB"``); H and W divisible by 4,
            at least 8. Default 64x64 RGB.
        representation: ``"pool"`` (r of ``r_dim`` channels at 1x1) or ``"tower"`` (r of
            ``r_dim`` channels at ``H/4 x W/4``).
        r_dim: Channels of ``r``; ``latent_dim = r_dim``.
        tower_channels: Width ``k`` of the representation network.
        h_dim: Channels of the cores' hidden and cell states.
        z_dim: Channels of each step's latent ``z_l`` (at ``H/4 x W/4``).
        generation_steps: ``L``, ConvDRAW steps.
        kernel_size: Odd kernel size of the cores' and of the prior and posterior convolutions.
        shared_core: One pair of cores for all steps (else one pair per step).
        sigma_i: Pixel standard deviation at step 0 (pixel units of ``[0, 1]`` images). A
            large sigma makes pixel errors cheap next to the KL, so what the query view shows
            goes into ``r`` (free) rather than into the posterior's latents (paid for in KL):
            trained with sigma 0.2 from the start, the tests' toy scenes were reconstructed
            well from the posterior but rendered badly from the prior; with 1.0, well.
        sigma_f: Pixel standard deviation after the annealing, ``<= sigma_i``.
        anneal_steps: ``n``, training steps of the linear annealing (0: ``sigma_f`` from the
            start). The paper anneals over its first 10% of steps (2e5 of 2e6); the default
            2000 suits CPU runs of a few thousand steps.
        max_context: Largest number of context views a training step draws (also bounded by
            ``K - 1`` of the batch).
        pose_dropout: Probability in ``[0, 1]`` that training replaces a context viewpoint by
            the all-zero "unknown pose" token.
    """

    input_shape: Sequence[int] = (3, 64, 64)
    representation: RepresentationKind = "pool"
    r_dim: int = 64
    tower_channels: int = 32
    h_dim: int = 32
    z_dim: int = 4
    generation_steps: int = 4
    kernel_size: int = 3
    shared_core: bool = True
    sigma_i: float = 2.0
    sigma_f: float = 0.7
    anneal_steps: int = 2000
    max_context: int = 5
    pose_dropout: float = 0.25

    def __post_init__(self) -> None:
        spec = InputSpec.for_shape(self.input_shape)
        _, h, w = spec.shape
        if h % SCALE or w % SCALE or min(h, w) < 2 * SCALE:
            raise ReprlError(
                f"input_shape: GQN needs H and W divisible by {SCALE} and at least {2 * SCALE} "
                f"(its generator works at 1/{SCALE} resolution), got H x W = {h} x {w}"
            )
        if self.representation not in _KINDS:
            raise ReprlError(
                f"representation: expected one of {_KINDS}, got {self.representation!r}"
            )
        self._set("input_shape", spec.shape)
        for arg in ("r_dim", "tower_channels", "h_dim", "z_dim", "generation_steps"):
            self._set(arg, _int_arg(getattr(self, arg), arg))
        self._set("kernel_size", _int_arg(self.kernel_size, "kernel_size"))
        if self.kernel_size % 2 == 0:
            raise ReprlError(f"kernel_size: expected an odd integer, got {self.kernel_size}")
        if not isinstance(self.shared_core, bool):
            raise ReprlError(f"shared_core: expected a bool, got {self.shared_core!r}")
        self._set("sigma_i", _float_arg(self.sigma_i, "sigma_i (a pixel std)", 1e-6))
        self._set("sigma_f", _float_arg(self.sigma_f, "sigma_f (a pixel std)", 1e-6))
        if self.sigma_f > self.sigma_i:
            raise ReprlError(
                f"sigma_f: expected at most sigma_i = {self.sigma_i} (sigma is annealed down), "
                f"got {self.sigma_f}"
            )
        self._set("anneal_steps", _int_arg(self.anneal_steps, "anneal_steps", minimum=0))
        self._set("max_context", _int_arg(self.max_context, "max_context"))
        prob = _float_arg(self.pose_dropout, "pose_dropout (a probability)", 0.0, 1.0)
        self._set("pose_dropout", prob)


@register
class GQN(Representation):
    """Generative Query Network (see the module docstring): a scene representation summed over
    views, trained by rendering an unseen view from its viewpoint.

    Trains on ``batch["views"]`` and ``batch["viewpoints"]`` (:attr:`batch_kind` ``"scenes"``);
    :meth:`encode` gives the pooled representation of one view of unknown pose,
    :meth:`represent` the scene representation of posed views, :meth:`render` pictures.

    The defaults are CPU-sized (a ``"pool"`` network of 32 channels, ``r`` of 64, cores of 32
    channels with 3x3 kernels shared by 4 steps, at most 5 context views); :data:`PAPER_CONFIG`
    is the paper's.

    Args:
        The fields of :class:`GQNConfig` (positional in its order, or by keyword), kept
        checked in :attr:`cfg` and written to checkpoints as :attr:`config`.

    Attributes:
        views_per_scene_min: 2, the fewest views per scene :meth:`loss` accepts (one context,
            one query); scene datasets must have at least that many (class attribute).
        step: Persistent ``int64`` buffer, the training steps taken (the annealing's ``t``).

    Raises:
        ReprlError: For invalid sizes, an unknown ``representation``, ``sigma_f > sigma_i``,
            probabilities outside ``[0, 1]``, or images whose sides are not divisible by 4.
    """

    name = "gqn"
    variational = False
    batch_kind = SCENES
    #: Fewest views per scene the loss accepts: one context view and one query view.
    views_per_scene_min: ClassVar[int] = 2
    #: Width of a viewpoint, ``(x, y, z, cos yaw, sin yaw, cos pitch, sin pitch)``.
    viewpoint_dim: ClassVar[int] = VIEWPOINT_DIM

    @configured(GQNConfig)
    def __init__(self, cfg: GQNConfig) -> None:
        spec = InputSpec.for_shape(cfg.input_shape)
        c, h, w = spec.shape
        super().__init__(input_spec=spec, latent_dim=cfg.r_dim, config=cfg.to_dict())
        self.cfg = cfg
        r_dim, h_dim, z_dim, kernel_size = cfg.r_dim, cfg.h_dim, cfg.z_dim, cfg.kernel_size
        self.grid = (h // SCALE, w // SCALE)

        self.representation_net = RepresentationNetwork(
            c, cfg.tower_channels, r_dim, pool=cfg.representation == "pool"
        )
        fixed_g = VIEWPOINT_DIM + r_dim + 2  # v_q, r, coordinates
        fixed_e = fixed_g + c * SCALE * SCALE  # and x_q's pixel blocks
        n_cores = 1 if cfg.shared_core else cfg.generation_steps
        self.generator_cores = nn.ModuleList(
            ConvLSTMCore(fixed_g, z_dim, h_dim, kernel_size) for _ in range(n_cores)
        )
        self.inference_cores = nn.ModuleList(
            ConvLSTMCore(fixed_e, 2 * h_dim, h_dim, kernel_size) for _ in range(n_cores)
        )
        pad = kernel_size // 2
        self.prior_head = nn.Conv2d(h_dim, 2 * z_dim, kernel_size, padding=pad)
        self.posterior_head = nn.Conv2d(h_dim, 2 * z_dim, kernel_size, padding=pad)
        #: ``Gamma = eta_g . Delta``: each grid cell's state sum to its 4x4 block of pixel logits.
        self.observation = nn.Linear(h_dim, c * SCALE * SCALE)
        ys = torch.linspace(-1.0, 1.0, self.grid[0])
        xs = torch.linspace(-1.0, 1.0, self.grid[1])
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))  # (2, h, w): x, y
        self.register_buffer("coords", coords.unsqueeze(0), persistent=False)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    @property
    def representation_kind(self) -> str:
        """``"pool"`` or ``"tower"``."""
        return self.cfg.representation

    @property
    def r_dim(self) -> int:
        """Channels of the scene representation ``r``."""
        return self.cfg.r_dim

    @property
    def h_dim(self) -> int:
        """Channels of the cores' hidden and cell states."""
        return self.cfg.h_dim

    @property
    def z_dim(self) -> int:
        """Channels of each step's latent ``z_l``."""
        return self.cfg.z_dim

    @property
    def generation_steps(self) -> int:
        """``L``, ConvDRAW steps."""
        return self.cfg.generation_steps

    @property
    def shared_core(self) -> bool:
        """Whether one pair of cores serves all steps."""
        return self.cfg.shared_core

    @property
    def sigma_i(self) -> float:
        """Pixel standard deviation at step 0."""
        return self.cfg.sigma_i

    @property
    def sigma_f(self) -> float:
        """Pixel standard deviation after the annealing."""
        return self.cfg.sigma_f

    @property
    def anneal_steps(self) -> int:
        """Training steps of the sigma annealing."""
        return self.cfg.anneal_steps

    @property
    def max_context(self) -> int:
        """Largest number of context views a training step draws."""
        return self.cfg.max_context

    @property
    def pose_dropout(self) -> float:
        """Probability that training hides a context viewpoint."""
        return self.cfg.pose_dropout

    # -- sigma -------------------------------------------------------------------------------

    def pixel_sigma(self, step: int | None = None) -> float:
        """The annealed pixel standard deviation.

        Args:
            step: Training step ``t``; ``None``: the model's :attr:`step`.

        Returns:
            ``max(sigma_f + (sigma_i - sigma_f) * (1 - t / anneal_steps), sigma_f)``
            (``sigma_f`` when ``anneal_steps`` is 0).
        """
        t = int(self.step) if step is None else int(step)
        if self.anneal_steps == 0:
            return self.sigma_f
        frac = 1.0 - t / self.anneal_steps
        return max(self.sigma_f + (self.sigma_i - self.sigma_f) * frac, self.sigma_f)

    # -- checks ------------------------------------------------------------------------------

    def _check_views(self, views: Any, what: str, min_views: int = 1) -> Tensor:
        """``views`` validated: ``(B, K, C, H, W)`` of the input spec, ``K >= min_views``."""
        c, h, w = self.input_spec.shape
        need = f"{what}: expected (B, K, C, H, W) = (B, K, {c}, {h}, {w}) float32 in [0, 1]"
        if not isinstance(views, Tensor):
            raise ReprlError(f"{need}, got {type(views).__name__}")
        if views.dim() != 5:
            raise ReprlError(f"{need}, got shape {tuple(views.shape)}")
        if views.shape[2] != c:
            raise ReprlError(
                f"{need}; got C={views.shape[2]} channels in shape {tuple(views.shape)}, "
                f"expected C={c} ({self.input_spec.channel_order})"
            )
        if tuple(views.shape[3:]) != (h, w):
            raise ReprlError(
                f"{need}; got H x W = {views.shape[3]} x {views.shape[4]} in shape "
                f"{tuple(views.shape)}, expected {h} x {w}"
            )
        if views.shape[1] < min_views:
            raise ReprlError(f"{need} with K >= {min_views}, got K = {views.shape[1]}")
        if views.shape[0] < 1:
            raise ReprlError(f"{need}, got an empty batch of shape {tuple(views.shape)}")
        try:
            self.input_spec.check(views.flatten(0, 1))
        except ReprlError as e:
            raise ReprlError(f"{what}: {e}") from None
        return views

    def _check_viewpoints(self, viewpoints: Any, what: str, lead: tuple[int, ...]) -> Tensor:
        """``viewpoints`` validated: shape ``(*lead, 7)``, float32, finite."""
        want = f"({', '.join(str(s) for s in lead)}, {VIEWPOINT_DIM})"
        need = (
            f"{what}: expected shape {want} float32 (x, y, z, cos yaw, sin yaw, cos pitch, "
            "sin pitch)"
        )
        if not isinstance(viewpoints, Tensor):
            raise ReprlError(f"{need}, got {type(viewpoints).__name__}")
        if viewpoints.dim() == len(lead) + 1 and viewpoints.shape[-1] != VIEWPOINT_DIM:
            raise ReprlError(
                f"{need}; got viewpoints of width {viewpoints.shape[-1]} (shape "
                f"{tuple(viewpoints.shape)}), expected width {VIEWPOINT_DIM}"
            )
        if tuple(viewpoints.shape) != (*lead, VIEWPOINT_DIM):
            raise ReprlError(f"{need}, got shape {tuple(viewpoints.shape)}")
        if viewpoints.dtype != torch.float32:
            raise ReprlError(f"{need}, got dtype {viewpoints.dtype}")
        if not bool(torch.isfinite(viewpoints).all()):
            raise ReprlError(f"{need}, got non-finite values")
        return viewpoints

    def _check_scenes(self, batch: Any) -> tuple[Tensor, Tensor]:
        """``batch["views"]`` and ``batch["viewpoints"]`` validated (see :meth:`loss`)."""
        c, h, w = self.input_spec.shape
        need = (
            f"GQN trains on scenes: batch['views'] of shape (B, K, C, H, W) = (B, K, {c}, {h}, "
            f"{w}) float32 in [0, 1], K >= {self.views_per_scene_min} views of one scene per "
            f"row, and batch['viewpoints'] of shape (B, K, {VIEWPOINT_DIM}) float32, their "
            "cameras"
        )
        if isinstance(batch, Tensor):
            raise ReprlError(f"{need}; got a bare tensor of shape {tuple(batch.shape)}")
        if not isinstance(batch, Mapping):
            raise ReprlError(f"{need}; got {type(batch).__name__}")
        if "views" not in batch:
            obs = batch.get("obs")
            got = (
                f"single frames batch['obs'] of shape {tuple(obs.shape)}"
                if isinstance(obs, Tensor)
                else f"keys {sorted(batch)}"
            )
            raise ReprlError(
                f"{need}; got {got} (pretrain draws scenes for methods whose batch_kind is "
                "'scenes', from a scene dataset)"
            )
        if "viewpoints" not in batch:
            raise ReprlError(
                f"{need}; got batch['views'] without batch['viewpoints'] (keys {sorted(batch)}): "
                "GQN needs every view's camera"
            )
        views = self._check_views(batch["views"], "batch['views']", min_views=0)
        vp = batch["viewpoints"]
        b, k = views.shape[:2]
        if isinstance(vp, Tensor) and vp.dim() == 3 and vp.shape[-1] == VIEWPOINT_DIM:
            if vp.shape[1] != k:
                raise ReprlError(
                    f"batch['viewpoints']: expected one viewpoint per view, K = {k} as in "
                    f"batch['views'] of shape {tuple(views.shape)}, got K = {vp.shape[1]} in "
                    f"shape {tuple(vp.shape)}"
                )
        vp = self._check_viewpoints(vp, "batch['viewpoints']", (b, k))
        if k < self.views_per_scene_min:
            raise ReprlError(
                f"{need}; got K = {k} view(s) per scene in batch['views'] of shape "
                f"{tuple(views.shape)}: expected at least {self.views_per_scene_min} (one "
                "context view and one query view)"
            )
        return views, vp

    # -- the model's parts -------------------------------------------------------------------

    def _represent(self, views: Tensor, viewpoints: Tensor) -> Tensor:
        """Summed representation of validated ``(B, K, C, H, W)``, ``(B, K, 7)``."""
        b, k = views.shape[:2]
        r = self.representation_net(views.flatten(0, 1), viewpoints.flatten(0, 1))
        return r.unflatten(0, (b, k)).sum(dim=1)

    def represent(self, views: Tensor, viewpoints: Tensor) -> Tensor:
        """The scene representation ``r = sum_k f(x_k, v_k)``.

        Args:
            views: ``(B, K, C, H, W)`` float32 in ``[0, 1]``, ``K >= 1`` views of one scene per
                row.
            viewpoints: ``(B, K, 7)`` float32, their cameras (all-zero rows: unknown pose).

        Returns:
            ``(B, r_dim, 1, 1)`` (``"pool"``) or ``(B, r_dim, H/4, W/4)`` (``"tower"``),
            non-negative; invariant to the order of the views and additive over them.

        Raises:
            ReprlError: On wrong shapes, channels, dtype or range, or a K mismatch.
        """
        views = self._check_views(views, "views")
        viewpoints = self._check_viewpoints(viewpoints, "viewpoints", tuple(views.shape[:2]))
        return self._represent(views, viewpoints)

    def _encode(self, obs: Tensor) -> Tensor:
        v = obs.new_zeros(obs.shape[0], VIEWPOINT_DIM)
        return self.representation_net(obs, v).mean(dim=(2, 3))

    def _fixed_inputs(self, r: Tensor, v_q: Tensor) -> Tensor:
        """``(B, 7 + r_dim + 2, h, w)``: ``v_q`` and ``r`` tiled over the grid, coordinates."""
        b = v_q.shape[0]
        size = self.grid
        v = v_q[:, :, None, None].expand(b, VIEWPOINT_DIM, *size)
        rr = r.expand(b, self.r_dim, *size) if r.shape[2:] == (1, 1) else r
        return torch.cat([v, rr, self.coords.to(r.dtype).expand(b, 2, *size)], dim=1)

    def _gaussian(self, head: nn.Module, h: Tensor) -> tuple[Tensor, Tensor]:
        mu, raw = head(h).chunk(2, dim=1)
        return mu, bound_logvar(raw)

    def _draw(
        self,
        r: Tensor,
        v_q: Tensor,
        x_q: Tensor | None,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor]:
        """Run the ConvDRAW.

        With ``x_q`` the latents come from the posterior (reparameterised samples) and the KL
        is returned; without, from the prior (samples if ``sample``, else its means) and the
        KL is zero.

        Returns:
            ``(mean, kl)``: ``(B, C, H, W)`` in ``[0, 1]``, and ``(B,)`` summed KL in nats.
        """
        b = v_q.shape[0]
        fixed = self._fixed_inputs(r, v_q)
        zeros = fixed.new_zeros(b, self.h_dim, *self.grid)
        h_g, c_g, h_e, c_e, total_h = zeros, zeros, zeros, zeros, zeros
        kl = fixed.new_zeros(b)
        if x_q is not None:
            fixed_e = torch.cat([fixed, F.pixel_unshuffle(x_q, SCALE)], dim=1)
        gates_g: Tensor | None = None
        gates_e: Tensor | None = None
        for l in range(self.generation_steps):
            i = 0 if self.shared_core else l
            if gates_g is None or not self.shared_core:
                gates_g = self.generator_cores[i].fixed_gates(fixed)
                if x_q is not None:
                    gates_e = self.inference_cores[i].fixed_gates(fixed_e)
            mu_p, logvar_p = self._gaussian(self.prior_head, h_g)
            if x_q is not None:
                assert gates_e is not None
                h_e, c_e = self.inference_cores[i](
                    gates_e, torch.cat([h_g, total_h], dim=1), (h_e, c_e)
                )
                mu_q, logvar_q = self._gaussian(self.posterior_head, h_e)
                eps = torch.randn(mu_q.shape, generator=generator, device=mu_q.device)
                z = mu_q + eps.to(mu_q.dtype) * torch.exp(0.5 * logvar_q)
                kl = kl + gaussian_kl_between(mu_q, logvar_q, mu_p, logvar_p).sum(dim=(1, 2, 3))
            elif sample:
                eps = torch.randn(mu_p.shape, generator=generator, device=mu_p.device)
                z = mu_p + eps.to(mu_p.dtype) * torch.exp(0.5 * logvar_p)
            else:
                z = mu_p
            h_g, c_g = self.generator_cores[i](gates_g, z, (h_g, c_g))
            total_h = total_h + h_g
        logits = self.observation(total_h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        mean = torch.sigmoid(F.pixel_shuffle(logits, SCALE))
        return mean, kl

    # -- pictures ----------------------------------------------------------------------------

    def render(
        self,
        context_views: Tensor,
        context_viewpoints: Tensor,
        query_viewpoints: Tensor,
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The view of each scene from a query viewpoint, given context views.

        Args:
            context_views: ``(B, M, C, H, W)`` float32 in ``[0, 1]``, ``M >= 1``.
            context_viewpoints: ``(B, M, 7)`` float32, their cameras.
            query_viewpoints: ``(B, 7)`` float32, the cameras to render from.
            sample: ``False`` (default): deterministic, every latent set to its prior mean;
                ``True``: latents sampled from the prior (a sample of the scene's
                uncertainty). Either way the result is the likelihood's mean image, without
                pixel noise.
            generator: Generator (on the model's device) for ``sample=True``; ``None``: the
                global RNG.

        Returns:
            ``(B, C, H, W)`` float32 in ``[0, 1]``.

        Raises:
            ReprlError: On wrong shapes, channels, dtype or range, or batch/K mismatches.
        """
        views = self._check_views(context_views, "context_views")
        b, m = views.shape[:2]
        vps = self._check_viewpoints(context_viewpoints, "context_viewpoints", (b, m))
        v_q = self._check_viewpoints(query_viewpoints, "query_viewpoints", (b,))
        r = self._represent(views, vps)
        return self._draw(r, v_q, None, sample=sample, generator=generator)[0]

    # -- training ----------------------------------------------------------------------------

    def select_views(
        self, views: Tensor, viewpoints: Tensor, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Draw one training example per scene: context views and a query view.

        The number of context views ``M`` is one per call, uniform in
        ``[1, min(K - 1, max_context)]``; per scene, a random permutation of its ``K`` views
        gives the query (its first) and the ``M`` context views (the next ``M``). In training
        mode each context viewpoint is replaced by the all-zero token with probability
        ``pose_dropout``; in eval mode never. The query's viewpoint is always kept.

        Args:
            views: ``(B, K, C, H, W)`` float32, ``K >= 2`` (not re-validated).
            viewpoints: ``(B, K, 7)`` float32.
            generator: Generator on the model's device; ``None``: the global RNG.

        Returns:
            ``{"context_views": (B, M, C, H, W), "context_viewpoints": (B, M, 7),
            "query_view": (B, C, H, W), "query_viewpoint": (B, 7), "context_index": (B, M),
            "query_index": (B,)}`` (indices into K, int64).
        """
        b, k = views.shape[:2]
        if k < self.views_per_scene_min:
            raise ReprlError(
                f"select_views: expected at least {self.views_per_scene_min} views per scene "
                f"(one context view and one query view), got K = {k}"
            )
        dev = views.device
        top = min(k - 1, self.max_context)
        m = int(torch.randint(1, top + 1, (1,), generator=generator, device=dev))
        perm = torch.rand((b, k), generator=generator, device=dev).argsort(dim=1)
        q_idx, c_idx = perm[:, 0], perm[:, 1 : 1 + m]
        rows = torch.arange(b, device=dev)
        ctx_vp = viewpoints[rows[:, None], c_idx]
        if self.training and self.pose_dropout > 0.0:
            drop = torch.rand((b, m), generator=generator, device=dev) < self.pose_dropout
            ctx_vp = torch.where(drop[..., None], torch.zeros_like(ctx_vp), ctx_vp)
        return {
            "context_views": views[rows[:, None], c_idx],
            "context_viewpoints": ctx_vp,
            "query_view": views[rows, q_idx],
            "query_viewpoint": viewpoints[rows, q_idx],
            "context_index": c_idx,
            "query_index": q_idx,
        }

    def loss(
        self, batch: dict[str, Tensor], *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Negative ELBO of a query view of each scene given context views, averaged over scenes.

        Views are drawn by :meth:`select_views`. In training mode the call counts as a training
        step: :attr:`step` grows by one after it (the annealing's ``t``).

        Args:
            batch: ``"views"``: ``(B, K, C, H, W)`` float32 in ``[0, 1]``, ``K >= 2`` views of
                one scene per row; ``"viewpoints"``: ``(B, K, 7)`` float32, their cameras.
            generator: Generator (on the model's device) for the views drawn and the latents;
                ``None``: the global RNG.

        Returns:
            ``(total, logs)``: ``total = nll + kl``; ``logs`` holds ``"loss"``, ``"nll"`` (the
            Gaussian NLL of the query view, summed over pixels, constants included), ``"kl"``
            (summed over steps and latents), ``"sigma"`` (the pixel std used), ``"mse"`` (mean
            squared error per pixel of the predicted mean image, latents from the posterior)
            and ``"context_views"`` (``M``).

        Raises:
            ReprlError: No views, views without viewpoints, viewpoints of a width other than
                7, a K mismatch, fewer than 2 views per scene, or views that do not match
                :attr:`input_spec`.
        """
        views, viewpoints = self._check_scenes(batch)
        sel = self.select_views(views, viewpoints, generator)
        x_q = sel["query_view"]
        r = self._represent(sel["context_views"], sel["context_viewpoints"])
        mean, kl = self._draw(r, sel["query_viewpoint"], x_q, sample=True, generator=generator)
        sigma = self.pixel_sigma()
        err = (x_q - mean).pow(2)
        nll_px = 0.5 * err / sigma**2 + math.log(sigma) + 0.5 * _LOG_2PI
        nll = nll_px.sum(dim=(1, 2, 3)).mean()
        kl = kl.mean()
        total = nll + kl
        if self.training:
            with torch.no_grad():
                self.step += 1
        return total, {
            "loss": float(total.detach()),
            "nll": float(nll.detach()),
            "kl": float(kl.detach()),
            "sigma": float(sigma),
            "mse": float(err.detach().mean()),
            "context_views": float(sel["context_views"].shape[1]),
        }

    @classmethod
    def probe_settings(cls, ctx: ScoreContext) -> dict[str, Any]:
        """``{"rendering": {"scenes", "collect"}}``: the fresh scenes' settings, or ``{}`` when
        ``ctx.rendering_scenes`` is 0."""
        if ctx.rendering_scenes <= 0:
            return {}
        return {"rendering": {"scenes": ctx.rendering_scenes, "collect": ctx.collect_key}}

    def probe_scores(self, ctx: ScoreContext) -> dict[str, Any]:
        """``{"rendering": ...}``: :func:`representations.probing.fresh_rendering_scores`."""
        if ctx.rendering_scenes <= 0:
            return {}
        return {"rendering": fresh_rendering_scores(self, ctx)}

    def example_batch(
        self, batch_size: int = 4, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Random scenes in the format :meth:`loss` expects.

        Args:
            batch_size: Number of scenes ``B``.
            generator: CPU generator; ``None`` uses the global RNG.

        Returns:
            ``{"views": (B, K, C, H, W) float32 uniform in [0, 1], "viewpoints": (B, K, 7)}``
            with ``K = max_context + 1`` and valid viewpoints (positions uniform in
            ``[-1, 1]``, yaw and pitch uniform angles).
        """
        k = self.max_context + 1
        lo, hi = self.input_spec.value_range
        x = torch.rand((batch_size, k, *self.input_spec.shape), generator=generator)
        pos = 2.0 * torch.rand((batch_size, k, 3), generator=generator) - 1.0
        ang = (2.0 * torch.rand((batch_size, k, 2), generator=generator) - 1.0) * math.pi
        yaw, pitch = ang[..., 0], ang[..., 1]
        cams = torch.stack([yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin()], dim=-1)  # (B, K, 4)
        return {
            "views": (lo + (hi - lo) * x).to(self.input_spec.torch_dtype),
            "viewpoints": torch.cat([pos, cams], dim=-1).to(torch.float32),
        }
