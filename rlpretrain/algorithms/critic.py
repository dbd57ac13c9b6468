"""PPO with a learned critic: GAE, the clipped value loss, and value heads/models.

Token layout as in losses.py: [N, L] rows, `mask` nonzero on the response positions.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel


def gae(token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalized Advantage Estimation (Schulman et al., arXiv 1506.02438), per row over the masked positions.

    δ_t = r_t + γ·V_{t'} − V_t,  A_t = δ_t + γλ·A_{t'},  R_t = A_t + V_t,
    where t' is the row's next masked position; after its last one V = A = 0 (the episode ends).
    Returns (advantages, returns), both 0 outside the mask. Rows may start at different offsets;
    unmasked positions inside a row are skipped over (the recursion carries across them).
    """
    mask = mask != 0
    values = values.to(token_rewards.dtype)
    advantages = torch.zeros_like(token_rewards)
    next_value = torch.zeros_like(token_rewards[:, 0])
    next_adv = torch.zeros_like(next_value)
    # reverse scan over positions, vectorised over rows
    for t in reversed(range(token_rewards.shape[1])):
        m = mask[:, t]
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]
        adv = delta + gamma * lam * next_adv
        advantages[:, t] = torch.where(m, adv, torch.zeros_like(adv))
        next_value = torch.where(m, values[:, t], next_value)
        next_adv = torch.where(m, adv, next_adv)
    returns = torch.where(mask, advantages + values, torch.zeros_like(advantages))
    return advantages, returns


def value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor,
               clip_range: float | None) -> Tensor:
    """Per-token value loss, 0 outside the mask; the caller aggregates.

    Unclipped: ½(V − R)². Clipped (PPO2 baselines / OpenAI's implementation): ½·max((V − R)²,
    (clip(V, V_old − c, V_old + c) − R)²), the pessimistic one of the two, so that a value update
    gains nothing by moving V further than c from V_old.
    """
    loss = (values - returns) ** 2
    if clip_range is not None:
        clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)
        loss = torch.maximum(loss, (clipped - returns) ** 2)
    return torch.where(mask != 0, 0.5 * loss, torch.zeros_like(loss))


class ValueHead(nn.Module):
    """hidden [..., H] -> value [...]: one linear layer.

    Small initial weights (std 1/(H+1), as in OpenRLHF) and a zero bias start the critic near
    V = 0, so the first advantages are close to the plain returns instead of random noise.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.normal_(self.linear.weight, std=1.0 / (hidden_size + 1))
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.linear(hidden.to(self.linear.weight.dtype)).squeeze(-1)


class PolicyValueHead(nn.Module):
    """A ValueHead on a policy's last hidden states ("a value head on the policy").

    The policy is shared, not owned: it stays out of this module's parameters and runs without
    gradient, so the value loss trains the head only and never moves the policy.
    forward(input_ids, attention_mask) -> values [N, L].
    """

    def __init__(self, policy: PreTrainedModel):
        super().__init__()
        self._policy = [policy]  # a list hides it from parameters(), state_dict() and the optimizer
        self.value_head = ValueHead(policy.config.hidden_size)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        with torch.no_grad():
            hidden = self._policy[0](input_ids=input_ids, attention_mask=attention_mask,
                                     output_hidden_states=True, use_cache=False).hidden_states[-1]
        return self.value_head(hidden)


class ValueModel(nn.Module):
    """A separate critic: a transformer trunk plus a ValueHead; forward(input_ids, attention_mask) -> [N, L].

    Built from a config (fresh weights) or a model. Only the trunk (`base_model`: the decoder without
    its LM head, the same attribute on Llama, Qwen2 and every other transformers model) is kept, so
    no [N, L, vocab] logits are ever computed. Its last_hidden_state is post final norm, like the
    `hidden_states[-1]` a PolicyValueHead reads.
    """

    def __init__(self, config_or_model: PretrainedConfig | PreTrainedModel):
        super().__init__()
        if isinstance(config_or_model, PretrainedConfig):
            self.backbone = AutoModel.from_config(config_or_model)
        else:
            self.backbone = config_or_model.base_model
        self.value_head = ValueHead(self.backbone.config.hidden_size)

    @classmethod
    def from_policy(cls, policy: PreTrainedModel) -> "ValueModel":
        """A critic initialised as a copy of the policy's trunk (the usual PPO-for-LMs initialisation)."""
        return cls(copy.deepcopy(policy.base_model))

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return self.value_head(out.last_hidden_state)
