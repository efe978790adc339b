"""The sign-in routes: ``path("auth/", include("entra_ciam.django.urls"))`` in ``urls.py``.

The include's prefix must match ``SIGNIN_PREFIX`` (``/auth`` by default) and the path of
``ENTRA_REDIRECT_URI``; ``SignInMiddleware`` must be in ``settings.MIDDLEWARE``. Names:
``entra_ciam:signin``, ``entra_ciam:redirect``, ``entra_ciam:signout``.
"""

from __future__ import annotations

from django.urls import path

from entra_ciam.django.views import sign_in_route

app_name = "entra_ciam"

urlpatterns = [
    path("signin", sign_in_route, name="signin"),
    path("redirect", sign_in_route, name="redirect"),
    path("signout", sign_in_route, name="signout"),
]
