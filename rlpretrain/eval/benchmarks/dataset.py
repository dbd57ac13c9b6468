"""What every dataset-backed benchmark shares: rows from the hub or a local file, rows -> Examples,
the few-shot pool, template checks. Families (math, choice, code) say how a row becomes an Example,
how a prompt reads and how an answer is found."""

from __future__ import annotations

import gzip
import json
from abc import abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import Any

from rlpretrain.eval.benchmarks.base import Benchmark, DatasetSpec, Example

LOCAL_FORMATS = (".json", ".jsonl", ".jsonl.gz", ".parquet")


def read_local_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a local json (a list of objects) / jsonl / jsonl.gz / parquet file, in file order."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no dataset file at {p}")
    name = p.name.lower()
    if name.endswith(".jsonl") or name.endswith(".jsonl.gz"):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if name.endswith(".json"):
        rows = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise ValueError(f"{p}: a .json dataset file must hold a list of rows")
        return rows
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    raise ValueError(f"{p}: unsupported dataset file; use one of {', '.join(LOCAL_FORMATS)}")


def hub_rows(spec: DatasetSpec, split: str) -> list[dict[str, Any]]:
    import datasets

    return list(datasets.load_dataset(spec.hf_id, spec.config, split=split))


class DatasetBenchmark(Benchmark):
    """A benchmark whose examples are the rows of one dataset split; `split` overrides the split
    evaluated (e.g. `champ` with split="all")."""

    def __init__(self, split: str | None = None) -> None:
        if split is not None:
            self.dataset = replace(self.dataset, split=split)
        self._fewshot: list[Example] | None = None

    @abstractmethod
    def to_example(self, row: dict[str, Any], index: int) -> Example:
        """One row, in the dataset's own schema, as an Example."""

    def keep(self, row: dict[str, Any]) -> bool:
        """Rows of the split that belong to the benchmark (a subset such as OlympiadBench's)."""
        return True

    def rows(self, split: str) -> list[dict[str, Any]]:
        return hub_rows(self.dataset, split)

    def _examples(self, rows: list[dict[str, Any]]) -> list[Example]:
        return [self.to_example(r, i) for i, r in enumerate(rows) if self.keep(r)]

    def load(self, local_path: str | None = None, limit: int | None = None) -> list[Example]:
        rows = read_local_rows(local_path) if local_path else self.rows(self.dataset.split)
        examples = self._examples(rows)
        if not examples:
            raise ValueError(f"benchmark '{self.name}': no examples in {local_path or self.dataset}")
        return examples[:limit] if limit else examples

    def load_fewshot(self, local_path: str | None = None) -> list[Example]:
        if local_path:
            self._fewshot = self._examples(read_local_rows(local_path))
        elif self.dataset.fewshot_split:
            self._fewshot = self._examples(self.rows(self.dataset.fewshot_split))
        else:
            raise ValueError(f"benchmark '{self.name}' has no few-shot split; pass a local file of examples")
        return self._fewshot

    def fewshot(self, example: Example, shots: int) -> list[Example]:
        """The first `shots` examples of the pool, leaving out `example` itself and, where the
        benchmark groups them (`fewshot_group`), examples of other groups (MMLU's subjects)."""
        if shots == 0:
            return []
        pool = self._fewshot if self._fewshot is not None else self.load_fewshot()
        group = self.fewshot_group(example)
        chosen = [e for e in pool if e.id != example.id and self.fewshot_group(e) == group][:shots]
        if len(chosen) < shots:
            raise ValueError(f"benchmark '{self.name}': {shots} shots asked, the few-shot pool has {len(chosen)}"
                             f"{f' for {group!r}' if group is not None else ''}")
        return chosen

    def stop(self, template: str) -> list[str]:
        return []

    @property
    def stop_strings(self) -> tuple[str, ...]:  # type: ignore[override]
        """The default template's stop strings (families say per template in `stop`)."""
        return tuple(self.stop(self.default_template))

    def fewshot_group(self, example: Example) -> Any:
        return None

    def check_template(self, template: str, shots: int, max_shots: int | None = None) -> None:
        if template not in self.templates:
            raise ValueError(f"benchmark '{self.name}' has no template '{template}'; available: {', '.join(self.templates)}")
        if shots < 0 or (max_shots is not None and shots > max_shots):
            raise ValueError(f"benchmark '{self.name}', template '{template}': shots must be in [0, {max_shots}], got {shots}")
