"""A daemon calling the todo API with app-only tokens (client credentials).

``python -m examples.daemon --owner <oid> [--add "text" ...]``; see examples/README.md.
"""

from examples.daemon.client import TodoApiClient, api_scope

__all__ = ["TodoApiClient", "api_scope"]
