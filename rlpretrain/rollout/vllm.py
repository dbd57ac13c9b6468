"""Rollout engine on vLLM: a thin adapter, pinned to one version range, the only module importing vllm.

Colocated (the default) it is an in-process `LLM` beside the learner, started from a copy of the
learner's weights; each sync reloads them in place (`collective_rpc("reload_weights")`) and drops
the prefix cache, whose entries were computed with the old weights. On GPUs it sleeps while the
learner trains (`rollout.vllm.sleep`), so the two do not hold memory at once; vLLM's CPU build has
no sleep mode. The same class runs as a separate worker (rlpretrain/launch/) from a model directory.

Sampling maps one to one from the project's SamplingParams. Log-probs are vLLM's
`processed_logprobs`: after temperature (and top-p), as the HF engine's are; with top_p < 1 vLLM
renormalises over the kept tokens, the HF engine does not.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import torch

from rlpretrain.rollout.base import ROLLOUT_ENGINES, Completion, RolloutEngine, SamplingParams
from rlpretrain.seeding import derive_seed

log = logging.getLogger(__name__)

SUPPORTED = ("0.31.0", "0.34.0")  # [low, high): the versions this adapter was written and tested against
INSTALL_HINT = ("rollout=vllm needs vLLM {low} to {high}: on GPUs `pip install 'vllm>={low},<{high}'`; on the CPU "
                "`make vllm-venv` (its CPU build in .venv-vllm), then run `.venv-vllm/bin/rlpretrain`")


def _import_vllm():
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engine core: starts in seconds
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on the CPU build (its default is 4)
    hint = INSTALL_HINT.format(low=SUPPORTED[0], high=SUPPORTED[1])
    try:
        import vllm
    except ImportError as e:
        raise ImportError(hint) from e
    from packaging.version import Version

    version = Version(vllm.__version__.split("+")[0])
    if not Version(SUPPORTED[0]) <= version < Version(SUPPORTED[1]):
        raise ImportError(f"vLLM {vllm.__version__} is not supported; " + hint)
    return vllm


@ROLLOUT_ENGINES.register("vllm")
class VLLMEngine(RolloutEngine):
    def __init__(self, cfg, module: torch.nn.Module | None, tokenizer, model_dir: str | None = None):
        """From the learner's module (colocated: its weights are saved once to start vLLM), or from
        `model_dir` (a separate worker)."""
        vllm = _import_vllm()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self._tmp = None
        if model_dir is None:
            self._tmp = model_dir = tempfile.mkdtemp(prefix="rlpretrain-vllm-")
            module.save_pretrained(model_dir, safe_serialization=True)
            tokenizer.save_pretrained(model_dir)
        v = cfg.vllm
        dtype = v.dtype
        if dtype == "auto" and module is not None:  # the learner's dtype (vLLM's CPU build would pick bf16)
            dtype = str(next(module.parameters()).dtype).removeprefix("torch.")
        from transformers import AutoConfig

        self.tied_head = bool(getattr(AutoConfig.from_pretrained(model_dir), "tie_word_embeddings", False))
        self.sleeps = bool(v.sleep) and torch.cuda.is_available()  # the CPU build has no sleep mode
        self.asleep = False
        self.llm = vllm.LLM(
            model=model_dir, tokenizer=model_dir, dtype=dtype, seed=0, enforce_eager=v.enforce_eager,
            gpu_memory_utilization=v.gpu_memory_utilization, tensor_parallel_size=v.tensor_parallel_size,
            max_model_len=v.max_model_len, enable_sleep_mode=self.sleeps, enable_prefix_caching=True,
            logprobs_mode="processed_logprobs",
            # vLLM's CPU build fails on seeded requests whose prefill is split across engine steps
            # ("CPU Generator does not use offset", 0.32.0): on the CPU, prefill whole prompts
            **({} if torch.cuda.is_available() else {"enable_chunked_prefill": False}),
        )

    def _wake(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

    def _sleep(self) -> None:
        if self.sleeps:
            self.llm.sleep(level=self.cfg.vllm.sleep_level)
            self.asleep = True

    def _sampling(self, params: SamplingParams, seed: int | None = None, **extra):
        from vllm import SamplingParams as VSamplingParams

        greedy = params.temperature <= 0
        return VSamplingParams(
            n=params.n, temperature=0.0 if greedy else params.temperature, top_p=params.top_p,
            max_tokens=params.max_new_tokens, stop_token_ids=list(params.stop_token_ids),
            stop=list(params.stop_strings) or None, include_stop_str_in_output=True,
            seed=params.seed if seed is None else seed,
            logprobs=0, skip_special_tokens=False, detokenize=bool(params.stop_strings), **extra,
        )

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        from vllm.inputs import TokensPrompt

        if any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        self.check_params(params, len(prompts))
        self._wake()
        # one seed per request: vLLM seeds each request on its own, so with one shared seed equal prompts
        # (AZR's seeding proposals, repeated eval items) would all get the same completions
        per_request = [self._sampling(params, seed=derive_seed(params.seed, i, "vllm-request")) for i in range(len(prompts))]
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], per_request, use_tqdm=False)
        self._sleep()  # the learner trains next
        return [[Completion(token_ids=list(o.token_ids),
                            logprobs=[float(lp[t].logprob) for lp, t in zip(o.logprobs, o.token_ids)],
                            finish_reason="stop" if o.finish_reason == "stop" else "length")
                 for o in out.outputs] for out in outputs]

    def score(self, sequences: list[list[int]]) -> list[list[float]]:
        """Teacher-forced log p(seq[j] | seq[:j]) for j = 1..len-1 (prompt log-probs, temperature 1)."""
        from vllm.inputs import TokensPrompt

        self._wake()
        params = self._sampling(SamplingParams(max_new_tokens=1, temperature=1.0), prompt_logprobs=0)
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=s) for s in sequences], params, use_tqdm=False)
        self._sleep()
        return [[float(lp[t].logprob) for lp, t in zip(out.prompt_logprobs[1:], seq[1:])]
                for out, seq in zip(outputs, sequences)]

    def load_weights(self, buckets) -> None:
        from rlpretrain.rollout.sync import WeightSyncError

        current = ["(first bucket)"]

        def tensors():
            for bucket in buckets:
                for name, tensor in bucket:
                    current[0] = name
                    yield name, tensor
                    # A tied LM head arrives once, as the input embedding (Learner.named_weights), and
                    # vLLM's reload does not re-tie it: without this the head kept its old weights
                    # (seen as mismatch/abs_logp_diff_mean ~5e-3 after each sync on the CPU build).
                    if self.tied_head and name == "model.embed_tokens.weight":
                        yield "lm_head.weight", tensor

        self._wake()
        try:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": tensors()})
        except Exception as e:
            raise WeightSyncError(f"vLLM could not load parameter '{current[0]}': {e}") from e
        self.llm.reset_prefix_cache()  # or prefixes cached under the old weights are silently reused
        self._sleep()

    def __del__(self):
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
