"""SB3 agents over pretrained encoders: features extractor, encoding wrapper, agent factory.

>>> import envs
>>> from agents import make_agent, save_agent, load_agent
>>> env = envs.make_vec("reprl/BreakoutStandard-v0", 16, seed=0)
>>> model = make_agent("ppo", env, encoder="vae.safetensors", mode="frozen", seed=0)
>>> model.learn(100_000)
>>> save_agent(model, "agent.zip")          # plain PPO.load("agent.zip") works too

- :class:`PretrainedEncoderExtractor` and :func:`extractor_kwargs`: a representation as an SB3
  features extractor (``frozen``, ``finetune``, ``scratch``), for plain SB3 users too.
- :class:`EncodeObservations`: the fast path for frozen encoders (encode once per env step).
- :func:`make_agent`, :func:`save_agent`, :func:`load_agent`: build, save and load agents.
"""

from agents.extractor import (
    EXTRACTOR_MODES,
    LatentProjectionExtractor,
    PretrainedEncoderExtractor,
    extractor_kwargs,
    representation_from_header,
)
from agents.factory import (
    ALGOS,
    MODES,
    agent_algo,
    export_pixel_agent,
    load_agent,
    make_agent,
    save_agent,
)
from agents.latent import EncodeObservations

__all__ = [
    "ALGOS",
    "EXTRACTOR_MODES",
    "MODES",
    "EncodeObservations",
    "LatentProjectionExtractor",
    "PretrainedEncoderExtractor",
    "agent_algo",
    "export_pixel_agent",
    "extractor_kwargs",
    "load_agent",
    "make_agent",
    "representation_from_header",
    "save_agent",
]
