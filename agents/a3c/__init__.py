"""A3C: asynchronous advantage actor-critic (Mnih et al. 2016) on reprl's encoders.

SB3 and sb3-contrib have only A2C, the synchronous variant. :class:`A3C` runs ``n_workers``
actor-learner processes, each with its own batched envs and a local copy of the actor-critic;
they apply n-step gradients, without locks, to a global model in shared memory through a
shared RMSProp. The actor-critic is SB3's, built from the same ``policy_kwargs`` as the PPO and
A2C agents: the pretrained encoder in the same modes (``frozen`` in the policy or in the
``EncodeObservations`` wrapper, ``finetune``, ``scratch``, ``pixels``) and the same stacked
frames or latents, or an LSTM core shared by both heads as in the paper
(``lstm_hidden_size``; :mod:`agents.recurrent`, whose ``predict`` carries the state). A saved
A3C loads and predicts like any SB3 agent::

    import envs
    from agents import make_agent, save_agent
    from agents.a3c import WorkerEnvs

    kwargs = {"frame_stack": 4, "min_object_size": 2}
    env = envs.make_vec("reprl/BreakoutStandard-v0", 8, seed=0, **kwargs)
    recipe = WorkerEnvs("reprl/BreakoutStandard-v0", 8, kwargs)  # each worker's envs
    model = make_agent("a3c", env, encoder="vae.safetensors", mode="frozen", env_fn=recipe,
                       n_workers=2, seed=0)
    model.learn(200_000, checkpoint="ckpt.zip")
    save_agent(model, "agent.zip")

- :class:`A3C`, :class:`A3CWorkerError`, :func:`max_workers`: the algorithm
  (:mod:`agents.a3c.algorithm`);
- :class:`WorkerEnvs`, :func:`n_step_returns`, :class:`Actor`, :func:`evaluate_rollout`,
  :func:`rollout_losses`: a worker's envs, rollouts and losses (:mod:`agents.a3c.worker`);
- :class:`SharedRMSprop`: the shared optimiser (:mod:`agents.a3c.optim`).
"""

from agents.a3c.algorithm import A3C, A3CWorkerError, check_lstm_hidden_size
from agents.a3c.optim import SharedRMSprop
from agents.a3c.worker import (
    Actor,
    Rollout,
    WorkerEnvs,
    build_worker_env,
    evaluate_rollout,
    n_step_returns,
    rollout_losses,
)
from agents.hyperparams import check_n_workers, max_workers  # bounds of A3C's n_workers

__all__ = [
    "A3C",
    "A3CWorkerError",
    "Actor",
    "Rollout",
    "SharedRMSprop",
    "WorkerEnvs",
    "build_worker_env",
    "check_lstm_hidden_size",
    "check_n_workers",
    "evaluate_rollout",
    "max_workers",
    "n_step_returns",
    "rollout_losses",
]
