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
