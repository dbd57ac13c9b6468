"""Methods, registered by name: importing this package registers all of them."""

from rlpretrain.methods import azr  # noqa: F401
from rlpretrain.methods import rlp  # noqa: F401
from rlpretrain.methods import rpt  # noqa: F401
from rlpretrain.methods.base import METHODS, Method

__all__ = ["METHODS", "Method"]
