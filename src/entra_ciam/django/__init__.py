"""Django and Django REST framework integration.

- ``entra_ciam.django.middleware.BearerTokenMiddleware`` and ``.SignInMiddleware`` go in
  ``settings.MIDDLEWARE``; settings come from ``settings.ENTRA_CIAM`` and the ``ENTRA_*``
  variables (see ``entra_ciam.django.settings``).
- ``path("auth/", include("entra_ciam.django.urls"))`` adds the sign-in routes.
- The generic ``require_scope``, ``require_role``, ``require_scope_or_app_permission`` and
  ``login_required`` work on function views and on class-based views (on the class or on
  ``dispatch``), sync or async, under WSGI and ASGI; ``request.claims`` holds the claims.
- ``entra_ciam.django.rest_framework`` has DRF's authentication and permission classes.
- Add ``"entra_ciam.django"`` to ``INSTALLED_APPS`` to check the settings at start-up even
  where no middleware would (an API protected by DRF classes alone).

Nothing here is imported by ``import entra_ciam``. Every module here needs Django (and asgiref,
which Django brings); without them the import says which extra to install, not a bare
``No module named 'django'``.
"""

from entra_ciam import _extras

_extras.require("django", "django", "asgiref", purpose="entra_ciam.django (the Django integration)")
