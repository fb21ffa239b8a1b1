"""Representation library: pretrained image encoders behind one small interface.

Every method is a :class:`Representation` (``encode``: ``(B, C, H, W)`` float32 in ``[0, 1]`` ->
``(B, latent_dim)``; ``loss(batch)``), registered by name:

>>> import representations as R
>>> vae = R.make_representation("beta_vae")          # 64x64 RGB default
>>> vae.save("vae.safetensors")
>>> same = R.load("vae.safetensors", expected_method="beta_vae")

Built-in methods: ``"beta_vae"``, ``"beta_vae_dae"`` (DARLA), ``"dae"``, ``"cpc"``,
``"monet"`` (MONet), ``"gqn"`` (GQN: scenes of several views with their cameras),
``"supervised"`` (the upper bound: trained on the factors), and the contrastive methods for
small objects, ``"st_dim"`` (ST-DIM) and ``"atc"`` (ATC), which train on pairs of frames of
one episode.
"""

from representations.atc import ATC
from representations.base import InputSpec, Representation, check_frame_shape, to_model_input
from representations.beta_vae import BetaVAE, BetaVAEDAE, gaussian_kl
from representations.checkpoint import (
    Checkpoint,
    CheckpointError,
    file_provenance,
    load,
    read_header,
    save,
)
from representations.cpc import CPC
from representations.dae import DenoisingAutoencoder, occlude, occlusion_masks
from representations.gqn import GQN
from representations.monet import MONet
from representations.registry import (
    available,
    check_config,
    get_class,
    make_representation,
    register,
)
from representations.st_dim import STDIM
from representations.supervised import SupervisedEncoder

__all__ = [
    "ATC",
    "CPC",
    "GQN",
    "STDIM",
    "BetaVAE",
    "BetaVAEDAE",
    "Checkpoint",
    "CheckpointError",
    "DenoisingAutoencoder",
    "InputSpec",
    "MONet",
    "Representation",
    "SupervisedEncoder",
    "available",
    "check_config",
    "check_frame_shape",
    "file_provenance",
    "gaussian_kl",
    "get_class",
    "load",
    "make_representation",
    "occlude",
    "occlusion_masks",
    "read_header",
    "register",
    "save",
    "to_model_input",
]
