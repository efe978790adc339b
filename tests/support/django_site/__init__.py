"""A Django project for the tests: plain views with the generic guards, DRF views, sign-in.

``settings`` serves the API (bearer middleware and DRF); ``settings_web`` adds sign-in. Both read
the ``ENTRA_*`` variables, as a deployed project would. Served by Django's runserver, gunicorn or
uvicorn in a subprocess (``tests.support.servers``).
"""
