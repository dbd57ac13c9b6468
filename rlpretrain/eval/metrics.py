"""Per-example metrics over n samples: mean@k, pass@k (unbiased estimator), maj@k.

A sample counts as correct for pass@k when its score is 1.0 (graders give 0/1; a partial score is
not a pass). Every function takes one example's samples in generation order; a benchmark's number
is the mean over its examples (`summarize`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def _check_k(n: int, k: int) -> None:
    if k < 1 or k > n:
        raise ValueError(f"k must be in [1, n={n}], got k={k}")


def mean_at_k(scores: Sequence[float], k: int | None = None) -> float:
    """The mean score of the first k samples (all when k is None): "P@1[k]" in the papers."""
    k = len(scores) if k is None else k
    _check_k(len(scores), k)
    return sum(scores[:k]) / k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021, HumanEval): 1 - C(n-c, k) / C(n, k), the chance that k of
    the n samples drawn without replacement contain a correct one. Computed as a running product
    prod_{i=n-c+1}^{n} (1 - k/i), which never forms the (huge) binomials."""
    _check_k(n, k)
    if not 0 <= c <= n:
        raise ValueError(f"c must be in [0, n={n}], got c={c}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def pass_at_k_scores(scores: Sequence[float], k: int) -> float:
    """pass@k estimated from all n samples' scores (n >= k)."""
    return pass_at_k(len(scores), sum(1 for s in scores if s >= 1.0), k)


def majority_answer(answers: Sequence[Hashable | None]) -> int | None:
    """The index of the sample whose answer wins the vote, or None when no sample has an answer.
    Samples without an answer (None) do not vote. Ties go to the answer that appeared first in
    generation order, so the result does not depend on hashing or on sorting answer strings."""
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        counts[a] = counts.get(a, 0) + 1
        first.setdefault(a, i)
    if not counts:
        return None
    return first[min(counts, key=lambda a: (-counts[a], first[a]))]  # most votes, then earliest


def maj_at_k(answers: Sequence[Hashable | None], scores: Sequence[float], k: int | None = None) -> float:
    """The score of the majority answer among the first k samples (0 when none has an answer).
    Votes are over the extracted answer strings as given: callers that want "1/2" and "0.5" to vote
    together normalise them first."""
    if len(answers) != len(scores):
        raise ValueError(f"{len(answers)} answers but {len(scores)} scores")
    k = len(scores) if k is None else k
    _check_k(len(scores), k)
    winner = majority_answer(answers[:k])
    return 0.0 if winner is None else float(scores[winner])


def summarize(scores: Sequence[Sequence[float]], answers: Sequence[Sequence[Hashable | None]] | None = None,
              ks: Sequence[int] = (1,)) -> dict[str, float]:
    """Benchmark-level metrics: for each k, the mean over examples of mean@k, pass@k and (with
    answers) maj@k, keyed "mean@k", "pass@k", "maj@k"."""
    if not scores:
        raise ValueError("no examples to summarize")
    out: dict[str, float] = {}
    for k in ks:
        out[f"mean@{k}"] = sum(mean_at_k(s, k) for s in scores) / len(scores)
        out[f"pass@{k}"] = sum(pass_at_k_scores(s, k) for s in scores) / len(scores)
        if answers is not None:
            out[f"maj@{k}"] = sum(maj_at_k(a, s, k) for a, s in zip(answers, scores)) / len(scores)
    return out
