"""The Flask todo web app: ``create_app()`` builds it; ``python -m examples.flask_todo`` runs it."""

from examples.flask_todo.app import create_app

__all__ = ["create_app"]
