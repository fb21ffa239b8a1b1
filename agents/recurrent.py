"""LSTM-core actor-critics: the A3C paper's shared core, on sb3-contrib's recurrent policies.

Mnih et al. (2016)'s A3C LSTM puts one LSTM (256 cells) between the features and both heads:
the policy and the value read the same core, and both losses train it. sb3-contrib's
``RecurrentActorCriticPolicy`` (the one ``RecurrentPPO`` uses) gives the critic an LSTM of its
own by default, or shares the actor's with the critic's gradient cut from it
(``shared_lstm=True``). :class:`SharedLstmPolicy` and :class:`SharedLstmCnnPolicy` are the
paper's form: sb3-contrib's shared LSTM, with the value loss's gradient flowing into it (and
into the features extractor) as the policy loss's does. Acting, ``predict`` and the state
(``predict(obs, state, episode_start)`` returns the actor's ``(h, c)``) are sb3-contrib's.

:func:`is_recurrent` tells any LSTM-core policy (these or sb3-contrib's) from a feedforward one;
:data:`RECURRENT_POLICIES` maps SB3's policy names to the shared-core forms.
"""

from __future__ import annotations

from typing import Any

from sb3_contrib.common.recurrent.policies import (
    RecurrentActorCriticCnnPolicy,
    RecurrentActorCriticPolicy,
)
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy
from torch import Tensor

from envs.errors import ReprlError


class _SharedCore:
    """The paper's shared LSTM core for an sb3-contrib recurrent policy (a mixin)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for key, want in (("shared_lstm", True), ("enable_critic_lstm", False)):
            if kwargs.get(key, want) != want:
                raise ReprlError(
                    f"policy_kwargs {key}: the shared LSTM core is one LSTM for both heads; "
                    f"expected {want} (or unset), got {kwargs[key]!r}"
                )
        if kwargs.get("share_features_extractor", True) is not True:
            raise ReprlError(
                "policy_kwargs share_features_extractor: the shared LSTM core reads one "
                f"features extractor; expected True, got {kwargs['share_features_extractor']!r}"
            )
        kwargs.update(shared_lstm=True, enable_critic_lstm=False)
        super().__init__(*args, **kwargs)

    def evaluate_actions(
        self, obs: Tensor, actions: Tensor, lstm_states: RNNStates, episode_starts: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``V(s)``, ``log pi(a|s)`` and the entropy along sequences (sb3-contrib's layout:
        each sequence's steps together), both heads on the one core, gradients into it from
        both."""
        features = self.extract_features(obs)
        latent, _ = self._process_sequence(
            features, lstm_states.pi, episode_starts, self.lstm_actor
        )
        latent_pi = self.mlp_extractor.forward_actor(latent)
        latent_vf = self.mlp_extractor.forward_critic(latent)  # no detach: the paper's core
        distribution = self._get_action_dist_from_latent(latent_pi)
        return self.value_net(latent_vf), distribution.log_prob(actions), distribution.entropy()


class SharedLstmPolicy(_SharedCore, RecurrentActorCriticPolicy):
    """sb3-contrib's ``RecurrentActorCriticPolicy`` (MLP) with the paper's shared LSTM core."""


class SharedLstmCnnPolicy(_SharedCore, RecurrentActorCriticCnnPolicy):
    """sb3-contrib's ``RecurrentActorCriticCnnPolicy`` with the paper's shared LSTM core."""


#: SB3's policy names and their shared-LSTM-core forms.
RECURRENT_POLICIES: dict[str, type[ActorCriticPolicy]] = {
    "MlpPolicy": SharedLstmPolicy,
    "CnnPolicy": SharedLstmCnnPolicy,
}

_PIXEL_FORMS: dict[type[ActorCriticPolicy], type[ActorCriticPolicy]] = {
    SharedLstmPolicy: SharedLstmCnnPolicy,
    SharedLstmCnnPolicy: SharedLstmCnnPolicy,
    RecurrentActorCriticPolicy: RecurrentActorCriticCnnPolicy,
    RecurrentActorCriticCnnPolicy: RecurrentActorCriticCnnPolicy,
}


def is_recurrent(policy: Any) -> bool:
    """Whether ``policy`` (an instance or a class) is an LSTM-core actor-critic (these or
    sb3-contrib's): its ``predict`` takes and returns a state."""
    cls = policy if isinstance(policy, type) else type(policy)
    return issubclass(cls, RecurrentActorCriticPolicy)


def pixel_policy_class(policy: Any) -> type[ActorCriticPolicy]:
    """The CNN policy class of the same kind as ``policy`` (feedforward, shared or
    sb3-contrib's LSTM core): what a latent agent's pixel-space export is built from.

    Raises:
        ReprlError: A recurrent policy class with no known CNN form.
    """
    cls = policy if isinstance(policy, type) else type(policy)
    if not is_recurrent(cls):
        return ActorCriticCnnPolicy
    if cls not in _PIXEL_FORMS:
        raise ReprlError(
            f"export: no pixel-space form of the recurrent policy {cls.__name__}; expected one "
            f"of {sorted(c.__name__ for c in _PIXEL_FORMS)}"
        )
    return _PIXEL_FORMS[cls]
