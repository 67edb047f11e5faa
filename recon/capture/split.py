"""Train/test split for sources that come without one."""
from __future__ import annotations


def holdout_split(n: int, test_every: int) -> list[str]:
    """Split labels for ``n`` frames: every ``test_every``-th (0, k, 2k, ...) is "test".

    The LLFF / Mip-NeRF 360 convention (``[::8]``); ``test_every`` 0 holds out
    nothing, and a capture of a single frame keeps it for training.
    """
    if test_every <= 0 or n < 2:
        return ["train"] * n
    return ["test" if i % test_every == 0 else "train" for i in range(n)]
