# The C accelerator p2pool/sharechain/_outputs.c (built on install when a compiler is there).
from typing import Any

def amount_rows(previous: list[Any], weights: dict[str, int], numerator: int, denominator_hi: int,
                denominator_lo: int, /) -> list[Any] | None: ...
