"""The Django app ``entra_ciam.django``: checks the settings when Django starts."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["EntraCiamConfig"]


class EntraCiamConfig(AppConfig):
    """Builds what the project's settings ask for at start-up, so a missing setting stops the
    process there (naming the variable) instead of failing every request."""

    name = "entra_ciam.django"
    label = "entra_ciam"
    verbose_name = "Microsoft Entra External ID"

    def ready(self) -> None:
        from entra_ciam.django.settings import check_at_startup

        check_at_startup()
