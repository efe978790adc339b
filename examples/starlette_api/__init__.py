"""The todo API example: ``create_app()`` builds it; ``python -m examples.starlette_api`` runs."""

from examples.starlette_api.app import create_app

__all__ = ["create_app"]
