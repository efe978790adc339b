"""entra_ciam.django.settings: ``settings.ENTRA_CIAM`` over the ``ENTRA_*`` variables, typos
refused, and only what a component uses required (in this process; the servers are in
test_django.py and test_startup_checks.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.django_inprocess import configure_django

AUTHORITY = "https://contoso.ciamlogin.com/aaaabbbb-0000-cccc-1111-dddd2222eeee"
FROM_ENV = "11112222-bbbb-3333-cccc-4444dddd5555"
FROM_SETTINGS = "22223333-cccc-4444-dddd-5555eeee6666"


@pytest.fixture(autouse=True)
def django_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_django()
    for name in ("ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET", "ENTRA_REDIRECT_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENTRA_AUTHORITY", AUTHORITY)
    monkeypatch.setenv("ENTRA_API_CLIENT_ID", FROM_ENV)
    yield


def test_a_key_in_settings_wins_over_its_variable() -> None:
    from django.test import override_settings

    from entra_ciam.django import settings as entra_settings

    with override_settings(ENTRA_CIAM={}):
        assert entra_settings.entra_config().api_client_id == FROM_ENV
    with override_settings(ENTRA_CIAM={"API_CLIENT_ID": FROM_SETTINGS, "PUBLIC_PATHS": ["/h"]}):
        assert entra_settings.entra_config().api_client_id == FROM_SETTINGS
        assert entra_settings.validator().audiences == frozenset({FROM_SETTINGS})
        assert entra_settings.bearer_policy().is_public("GET", "/h", False)


def test_an_unknown_key_is_refused_with_its_name() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from entra_ciam.django import settings as entra_settings

    with (
        override_settings(ENTRA_CIAM={"PUBLIC_PATH": ["/healthz"]}),
        pytest.raises(ImproperlyConfigured, match="PUBLIC_PATH"),
    ):
        entra_settings.check_at_startup()


def test_an_api_needs_no_web_app_setting_but_sign_in_does() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from entra_ciam.django import settings as entra_settings

    api = ["entra_ciam.django.middleware.BearerTokenMiddleware"]
    with override_settings(MIDDLEWARE=api, ENTRA_CIAM={}):
        entra_settings.check_at_startup()  # no ENTRA_CLIENT_ID, no secret: fine
    web = [*api, "entra_ciam.django.middleware.SignInMiddleware"]
    with (
        override_settings(MIDDLEWARE=web, ENTRA_CIAM={}),
        pytest.raises(ImproperlyConfigured, match="ENTRA_CLIENT_SECRET is not set"),
    ):
        entra_settings.check_at_startup()
