"""TPT (Thinking-augmented Pre-Training, arXiv 2509.20186): the offline thinking generator, the
next-token trainer (also the continued-pretraining baseline, `method=ntp`) and the two together."""

from rlpretrain.methods.tpt import generate, ntp, pipeline
from rlpretrain.runners import RUNNERS

RUNNERS.register("tpt_generate")(generate.run)
RUNNERS.register("ntp")(ntp.run)
RUNNERS.register("tpt_pipeline")(pipeline.run)
