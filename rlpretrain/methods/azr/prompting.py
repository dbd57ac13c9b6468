"""From a task prompt to token ids, and the sampling settings of AZR's generations."""

from __future__ import annotations

from rlpretrain.methods.azr.parsing import opened_block
from rlpretrain.methods.azr.templates import wrap
from rlpretrain.methods.thoughts import thought_end_ids
from rlpretrain.rollout.base import SamplingParams


class Prompter:
    def __init__(self, tokenizer, prompt_format: str, think: bool, max_prompt_tokens: int, rollout_cfg,
                 scaffold_blocks: bool = False):
        if max_prompt_tokens < 1:
            raise ValueError(f"method.max_prompt_tokens must be positive, got {max_prompt_tokens}")
        if scaffold_blocks and think:
            raise ValueError("method.scaffold_blocks needs method.think=false (a response in the R1 template "
                             "starts with its reasoning, not with a block)")
        self.scaffold_blocks = scaffold_blocks
        self.tokenizer = tokenizer
        self.format = prompt_format
        self.think = think
        self.max_prompt_tokens = max_prompt_tokens
        self.rollout = rollout_cfg
        wrap("", prompt_format, tokenizer, think)  # fail early on a bad format
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.stop_ids = sorted(set(eos + thought_end_ids(tokenizer, None)))
        # a response is over once its answer closes; scaffolded, each generation once its block closes
        self.stop_strings = list(rollout_cfg.stop_strings) + (["</answer>"] if think else []) + (
            ["```"] if scaffold_blocks else [])
        self.truncated = 0  # prompts cut to max_prompt_tokens since the last take_truncated()
        self._fences: dict[str, list[int]] = {}

    @classmethod
    def from_config(cls, tokenizer, cfg) -> "Prompter":
        m = cfg.method
        return cls(tokenizer, m.prompt_format, m.think, m.max_prompt_tokens, cfg.rollout, m.scaffold_blocks)

    def prefix(self, block: str) -> str:
        """What the prompt writes of the response: the opening fence of its first block, or nothing."""
        return opened_block(block) if self.scaffold_blocks else ""

    def fence_ids(self, block: str) -> list[int]:
        """The tokens the scaffold writes after a closed block to open the next one (tokenized once per block)."""
        if block not in self._fences:
            self._fences[block] = self.tokenizer("\n" + opened_block(block), add_special_tokens=False)["input_ids"]
        return list(self._fences[block])

    def ids(self, prompt: str, block: str) -> list[int]:
        """Token ids of the prompt whose response must hold a ```block (the first one asked for)."""
        text = wrap(prompt, self.format, self.tokenizer, self.think) + self.prefix(block)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > self.max_prompt_tokens:  # keep the end: the instructions and the opened <think>
            self.truncated += 1
            ids = ids[-self.max_prompt_tokens:]
        return ids

    def take_truncated(self) -> int:
        n, self.truncated = self.truncated, 0
        return n

    def sampling(self, n: int, seed: int, temperature: float | None = None) -> SamplingParams:
        r = self.rollout
        return SamplingParams(max_new_tokens=r.max_new_tokens, temperature=r.temperature if temperature is None else temperature,
                              top_p=r.top_p, n=n, stop_token_ids=self.stop_ids, stop_strings=self.stop_strings, seed=seed)

    def text(self, token_ids: list[int], block: str) -> str:
        """A response's text (with the prefilled fence), without the end-of-turn token that may close it."""
        text = self.prefix(block) + self.tokenizer.decode(token_ids, skip_special_tokens=False)
        for tok in (self.tokenizer.eos_token, "<|im_end|>"):
            if tok and text.endswith(tok):
                text = text[:-len(tok)]
        return text
