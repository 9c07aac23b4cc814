"""Errors of the operator use cases (the rest of the tree is in `bridge.errors`).

BridgeError
└── OperationRefusedError    the action is understood but unsafe right now -> 409
"""

from bridge.errors import BridgeError


class OperationRefusedError(BridgeError):
    """An operator action that the current state makes unsafe; nothing changed."""
