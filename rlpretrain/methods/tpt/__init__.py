"""TPT (Thinking-augmented Pre-Training, arXiv 2509.20186): the offline thinking generator, the
next-token trainer (also the continued-pretraining baseline, `method=ntp`) and the two together.

They are not RL methods: the jobs tpt_generate, ntp and tpt_pipeline (rlpretrain/jobs/) run them.
"""
