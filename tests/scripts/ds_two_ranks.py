"""Run by tests/test_deepspeed.py under `torchrun --nproc_per_node 2`: each rank trains on its half
of the rows with the DeepSpeed learner; rank 0 writes the per-step loss, grad norm and final weights."""

import json
import sys

import torch

sys.path.insert(0, sys.argv[1])  # the tests folder: its learner fixtures
from test_deepspeed import STEPS, learner_cfg, make_batch, make_model  # noqa: E402

from rlpretrain.algorithms.objectives import NextTokenObjective  # noqa: E402
from rlpretrain.learner.deepspeed import DeepSpeedLearner  # noqa: E402

stage, out = int(sys.argv[2]), sys.argv[3]
learner = DeepSpeedLearner(learner_cfg(stage), make_model(), total_steps=STEPS)
rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
curve = []
for step in range(STEPS):
    batch = make_batch(step)
    mine = {k: v[rank::world] for k, v in batch.items()}  # this rank's rows
    stats = learner.train_step(mine, NextTokenObjective("token_mean"))
    curve.append([stats["ntp_loss"], stats["grad_norm"]])
with learner.gathered():
    weights = {k: v.detach().clone() for k, v in learner.module.state_dict().items()}
if rank == 0:
    torch.save(weights, out + ".pt")
    with open(out + ".json", "w") as f:
        json.dump(curve, f)
