"""One RL step of rlpretrain's loop vs TRL's GRPOTrainer, same tiny model, in one run.

Both sides do the same work per step: B contexts x G thoughts sampled at temperature 0.7 for at
most T new tokens (stopping at </think>), the information-gain reward (policy with the thought vs
an EMA/frozen teacher without it, teacher-forced), and one optimizer step. TRL gets the reward as a
reward function running the project's shared-prefix scorer; ours scores S_pred inside the decode loop
(SamplingParams.suffix_ids), so its `generate` includes S_pred and its `score` is S_ema and the rewards.
So that both sides do equal work at every step:
- both see the same contexts in the same order (the same document stream and position seeds,
  positions drawn uniformly at random: position_sampling=random);
- the learning rate is 0, so both sample from the same fixed weights (with learning on, each
  side's thoughts drift to different lengths, and the side whose thoughts shrink looks faster);
- TRL's gradient checkpointing (its default) is off: ours has none, and the model is tiny.
The sides alternate over `--rounds` so that a change in machine load hits both. Prints the median
step time per side, the ratio, and where our step's time goes.

    python benchmarks/bench_step_vs_trl.py [--steps 10] [--warmup 3] [--rounds 2] [key=value ...]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch


def our_steps(cfg_overrides, steps: int, warmup: int, run_dir: Path) -> list[dict]:
    from hydra import compose, initialize_config_dir

    from rlpretrain.cli import CONF_DIR
    from rlpretrain.config import register_configs
    from rlpretrain.loop import train
    from rlpretrain.tracking import read_metrics

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*cfg_overrides, f"trainer.max_steps={warmup + steps}", f"run_dir={run_dir}",
                                           "tracking.progress=false", "tracking.tensorboard=false",
                                           "checkpoint.every=0"])
    train(cfg)
    return read_metrics(run_dir, "timings.jsonl")[warmup:], read_metrics(run_dir)[warmup:], cfg


def trl_steps(cfg, steps: int, warmup: int, out_dir: Path) -> tuple[list[float], list[float]]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlpretrain.rewards.info_gain import information_gain_terms
    from rlpretrain.data.documents import DocumentStream, load_documents
    from rlpretrain.data.positions import POSITION_SAMPLERS
    from rlpretrain.seeding import derive_seed
    from rlpretrain.models.loading import load_model_and_tokenizer
    from rlpretrain.models.scorer import TeacherForcedScorer

    tokenizer, model = load_model_and_tokenizer(cfg.model, torch.device("cpu"))
    m = cfg.method
    tokenizer.eos_token = m.think_close  # TRL stops at the tokenizer's eos: make that </think>, as ours
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    open_id = tokenizer.convert_tokens_to_ids(m.think_open)
    close_id = tokenizer.convert_tokens_to_ids(m.think_close)
    # the contexts our loop sees, in its order: the same stream, seeds and position sampler
    stream = DocumentStream(load_documents(cfg.data, cfg.seed), tokenizer, m.min_context + m.horizon, cfg.seed)
    rows = []
    for step in range(warmup + steps):
        picks = stream.take(m.contexts_per_step)
        docs = [stream.docs[i] for i, _ in picks]
        rng = random.Random(derive_seed(cfg.seed, step, "positions"))
        for doc, t in zip(docs, POSITION_SAMPLERS.get(m.position_sampling)(docs, [e for _, e in picks], rng, m, None)):
            ctx = doc[max(0, t - m.max_context):t]
            rows.append({"prompt": tokenizer.decode(ctx + [open_id]), "context_ids": ctx, "target_id": doc[t]})
    dataset = Dataset.from_list(rows)

    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    policy_scorer = TeacherForcedScorer(model, tokenizer.pad_token_id)
    teacher_scorer = TeacherForcedScorer(teacher, tokenizer.pad_token_id)

    def info_gain(prompts, completions, completion_ids, context_ids, target_id, **_):
        scored, baseline = [], []
        for ctx, thought, target in zip(context_ids, completion_ids, target_id):
            closed = thought if thought[-1:] == [close_id] else thought + [close_id]
            scored.append(ctx + [open_id] + closed + [target])
            baseline.append(ctx + [target])
        # the code ours runs, context sharing included
        s_pred, s_ema = information_gain_terms(policy_scorer, teacher_scorer, scored, baseline,
                                               prompt_lens=[len(ctx) + 1 for ctx in context_ids])
        return (s_pred - s_ema).tolist()

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

    args = GRPOConfig(
        output_dir=str(out_dir), use_cpu=True, bf16=False, seed=cfg.seed, report_to=[], save_strategy="no",
        logging_steps=1, disable_tqdm=True, max_steps=warmup + steps, learning_rate=cfg.learner.lr,
        per_device_train_batch_size=m.contexts_per_step * m.group_size, num_generations=m.group_size,
        max_completion_length=cfg.rollout.max_new_tokens, temperature=cfg.rollout.temperature, top_p=1.0,
        beta=0.0, scale_rewards="none", dataloader_num_workers=0,
        gradient_checkpointing=False,  # TRL's default is on; a tiny model needs no memory saving, and ours has none
        shuffle_dataset=False,  # the rows in order: the contexts ours sees, step by step
    )
    trainer = GRPOTrainer(model=model, reward_funcs=info_gain, args=args, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[Timer()])
    trainer.train()
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    return times[warmup:], lengths[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per side and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first, per side and round")
    parser.add_argument("--rounds", type=int, default=2, help="ours then TRL, this many times")
    parser.add_argument("overrides", nargs="*", default=[], help="Hydra overrides for both sides")
    args = parser.parse_args()
    overrides = ["experiment=quickstart", "method.position_sampling=random", "learner.lr=0", *args.overrides]
    ours, ours_metrics, theirs, trl_lengths, ratios = [], [], [], [], []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            timings, metrics, cfg = our_steps(overrides, args.steps, args.warmup, Path(tmp) / "ours")
            trl_times, lengths = trl_steps(cfg, args.steps, args.warmup, Path(tmp) / "trl")
        ours += timings
        ours_metrics += metrics
        theirs += trl_times
        trl_lengths += lengths
        ratios.append(statistics.median(trl_times) / statistics.median(t["time/step"] for t in timings))
    m = cfg.method
    ours_step = statistics.median(t["time/step"] for t in ours)
    trl_step = statistics.median(theirs)
    print(f"batch: {m.contexts_per_step} contexts x G={m.group_size}, <= {cfg.rollout.max_new_tokens} new tokens, "
          f"temperature {cfg.rollout.temperature}, lr {cfg.learner.lr}; {args.rounds} rounds of {args.steps} timed "
          f"steps per side after {args.warmup} warm-up")
    print(f"thought length (mean)   : rlpretrain {statistics.fmean(t['thought_len_mean'] for t in ours_metrics):.1f}, "
          f"TRL {statistics.fmean(trl_lengths):.1f} tokens")
    print(f"rlpretrain step (median): {ours_step * 1000:8.1f} ms")
    print(f"TRL GRPOTrainer step    : {trl_step * 1000:8.1f} ms")
    print(f"ratio TRL / rlpretrain  : {trl_step / ours_step:8.2f}x   (per round: "
          + ", ".join(f"{x:.2f}x" for x in ratios) + ")")
    print("where rlpretrain's step goes (median ms):")
    for key in ("time/generate", "time/score", "time/update"):
        print(f"  {key.split('/')[1]:<9} {statistics.median(t[key] for t in ours) * 1000:8.1f}")


if __name__ == "__main__":
    main()
