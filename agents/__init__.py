"""SB3 agents over pretrained encoders: features extractor, encoding wrapper, agent factory.

>>> import envs
>>> from agents import agent_info, make_agent, save_agent
>>> env = envs.make_vec("reprl/BreakoutStandard-v0", 16, seed=0, frame_stack=4)
>>> model = make_agent("ppo", env, encoder="vae.safetensors", mode="frozen", frame_stack=4)
>>> model.learn(100_000)
>>> save_agent(model, "agent.zip", info={"env_id": "reprl/BreakoutStandard-v0"})
>>> agent_info("agent.zip")["reprl"]["frame_stack"]   # plain PPO.load("agent.zip") works too
4

- :class:`PretrainedEncoderExtractor` and :func:`extractor_kwargs`: a representation as an SB3
  features extractor (``frozen``, ``finetune``, ``scratch``), for plain SB3 users too.
- :class:`EncodeObservations`: the fast path for frozen encoders (encode once per env step);
  :func:`latent_view` runs a loaded frozen-encoder agent that way (evaluation).
- :func:`make_agent`, :func:`save_agent`, :func:`load_agent`, :func:`agent_info`: build, save
  and load agents, read a zip's metadata. Loading is safe by default (:mod:`agents.safe_zip`:
  no pickle; a zip that needs it is refused with :class:`PickleRefused` unless
  ``trust_pickle=True``); :func:`convert_agent` rewrites a trusted SB3 zip in the safe form.
- :func:`check_agent_spaces` (:mod:`agents.space_check`): an agent's observation and action
  spaces (and meanings) against a target env's, before the first step.
- :class:`ImpalaCNN`: the Procgen paper's IMPALA-CNN as an SB3 features extractor
  (``make_agent(..., mode="pixels", pixel_extractor="impala")``).
- :class:`A3C` (:mod:`agents.a3c`): asynchronous actor-learner processes on the same
  encoders (``make_agent("a3c", env, ..., env_fn=WorkerEnvs(...))``).
- :class:`Algorithm` (:mod:`agents.algorithms`, :func:`get_algorithm`): how PPO, A2C and A3C
  train behind one interface (envs of the main process, a :class:`Budget` of steps or
  seconds, checkpoint and resume, provenance), for loops that train any of them.
- :class:`DevicePPO` (:mod:`agents.device_ppo`, :func:`learn_on_device`): SB3's PPO trained
  with its rollouts and updates on a reprl batched env's device (no numpy loop);
  :func:`resolve_loop` says which loop an env and algorithm get (``Algorithm(..., loop=...)``).
- :class:`PPOHyperparams`, :class:`A2CHyperparams`, :class:`A3CHyperparams`,
  :func:`check_ppo_batch`: typed
  hyperparameters (:mod:`agents.hyperparams`); :data:`PROCGEN_PPO`: train-procgen's PPO.
- :mod:`agents.recurrent`: LSTM-core actor-critics (the A3C paper's shared core on
  sb3-contrib's recurrent policies).
- :mod:`agents.sb3_compat`: every access to SB3 internals, checked by ``check_internals``.
"""

import envs  # noqa: F401  first: it imports the old gym quietly before SB3 does
from agents.a3c import A3C, A3CWorkerError, WorkerEnvs
from agents.algorithms import A3CAlgorithm, Algorithm, Budget, get_algorithm
from agents.device_ppo import DevicePPO, learn_on_device, resolve_loop
from agents.export import export_pixel_agent
from agents.extractor import (
    EXTRACTOR_MODES,
    LatentProjectionExtractor,
    MissingFileError,
    PretrainedEncoderExtractor,
    extractor_kwargs,
    representation_from_header,
)
from agents.factory import ALGOS, MODES, PIXEL_EXTRACTORS, make_agent
from agents.hyperparams import (
    PROCGEN_PPO,
    A2CHyperparams,
    A3CHyperparams,
    PolicyHyperparams,
    PPOHyperparams,
    check_ppo_batch,
)
from agents.impala import ImpalaCNN
from agents.latent import EncodeObservations, LatentPolicy, latent_view
from agents.safe_zip import PickleRefused, register_safe_class
from agents.saving import agent_algo, agent_info, convert_agent, load_agent, save_agent
from agents.space_check import check_agent_spaces

__all__ = [
    "A3C",
    "ALGOS",
    "EXTRACTOR_MODES",
    "MODES",
    "PIXEL_EXTRACTORS",
    "PROCGEN_PPO",
    "A2CHyperparams",
    "A3CAlgorithm",
    "A3CHyperparams",
    "A3CWorkerError",
    "Algorithm",
    "Budget",
    "DevicePPO",
    "EncodeObservations",
    "ImpalaCNN",
    "LatentPolicy",
    "LatentProjectionExtractor",
    "MissingFileError",
    "PPOHyperparams",
    "PickleRefused",
    "PolicyHyperparams",
    "PretrainedEncoderExtractor",
    "WorkerEnvs",
    "agent_algo",
    "agent_info",
    "check_agent_spaces",
    "check_ppo_batch",
    "convert_agent",
    "export_pixel_agent",
    "extractor_kwargs",
    "get_algorithm",
    "latent_view",
    "learn_on_device",
    "load_agent",
    "make_agent",
    "register_safe_class",
    "representation_from_header",
    "resolve_loop",
    "save_agent",
]
