"""Packing token streams into fixed-length training blocks."""

from __future__ import annotations


def pack_blocks(docs: list[list[int]], block_size: int, separator: int) -> list[list[int]]:
    """Concatenate documents, each followed by `separator`, and cut into full blocks of `block_size`.

    Every token of the stream lands in exactly one block; a final partial block is dropped.
    """
    stream: list[int] = []
    for doc in docs:
        stream.extend(doc)
        stream.append(separator)
    return [stream[i:i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]


PACKING_STRATEGIES = ("wrap", "no_split")


class StreamPacker:
    """Packs (token ids, loss mask) samples into fixed-length sequences as they arrive; masks travel with tokens.

    Each sample is followed by `separator` (if not None), whose loss-mask value is the sample's last
    one (a response-only sample trains its end-of-sample token; a masked-out sample does not).

    - ``wrap``: one token stream cut every `seq_len` tokens (as `pack_blocks`): no padding, samples
      may straddle sequences.
    - ``no_split``: a sample (with its separator) that does not fit in the current sequence's
      remaining room starts a new one, the old one right-padded (`pad_id`, attention and loss mask 0);
      a sample longer than `seq_len` starts a sequence and is cut every `seq_len` tokens.

    No token is dropped or duplicated; `flush()` returns the final partial sequence (padded).
    `state_dict()` is the unfinished sequence, for exact resume.
    """

    def __init__(self, seq_len: int, separator: int | None, strategy: str = "wrap", pad_id: int = 0):
        if strategy not in PACKING_STRATEGIES:
            raise ValueError(f"packing strategy must be one of {PACKING_STRATEGIES}, got '{strategy}'")
        if seq_len < 1:
            raise ValueError(f"seq_len must be positive, got {seq_len}")
        self.seq_len, self.separator, self.strategy, self.pad_id = seq_len, separator, strategy, pad_id
        self.ids: list[int] = []
        self.mask: list[int] = []

    def add(self, ids: list[int], mask: list[int]) -> list[dict[str, list[int]]]:
        """Add one sample; returns the sequences it completed (each: input_ids, loss_mask, attention_mask)."""
        if len(ids) != len(mask):
            raise ValueError(f"sample has {len(ids)} tokens but {len(mask)} mask values")
        ids, mask = list(ids), [int(m) for m in mask]
        if self.separator is not None:
            ids.append(self.separator)
            mask.append(mask[-1] if mask else 0)
        out = []
        if self.strategy == "no_split" and self.ids and len(self.ids) + len(ids) > self.seq_len:
            out.append(self._emit_padded())
        self.ids.extend(ids)
        self.mask.extend(mask)
        while len(self.ids) >= self.seq_len:
            out.append(self._emit(self.seq_len))
        return out

    def flush(self) -> list[dict[str, list[int]]]:
        return [self._emit_padded()] if self.ids else []

    def _emit(self, n: int) -> dict[str, list[int]]:
        block = {"input_ids": self.ids[:n], "loss_mask": self.mask[:n], "attention_mask": [1] * n}
        self.ids, self.mask = self.ids[n:], self.mask[n:]
        return block

    def _emit_padded(self) -> dict[str, list[int]]:
        n, pad = len(self.ids), self.seq_len - len(self.ids)
        block = self._emit(n)
        block["input_ids"] += [self.pad_id] * pad
        block["loss_mask"] += [0] * pad
        block["attention_mask"] += [0] * pad
        return block

    def state_dict(self) -> dict:
        return {"ids": list(self.ids), "mask": list(self.mask)}

    def load_state_dict(self, state: dict) -> None:
        self.ids, self.mask = list(state["ids"]), list(state["mask"])


def pack_with_masks(samples, seq_len: int, separator: int | None, strategy: str = "wrap", pad_id: int = 0,
                    keep_last: bool = False) -> list[dict[str, list[int]]]:
    """All `samples` ((ids, mask) pairs) packed with `StreamPacker`; the final partial sequence kept (padded)
    only with `keep_last` (with `wrap` and no masks this equals `pack_blocks`)."""
    packer = StreamPacker(seq_len, separator, strategy, pad_id)
    out = []
    for ids, mask in samples:
        out.extend(packer.add(ids, mask))
    if keep_last:
        out.extend(packer.flush())
    return out
