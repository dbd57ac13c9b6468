"""Where the learner and the rollout engine run: `launcher=local` (this process) or `launcher=ray`."""
