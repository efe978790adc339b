"""The built-in tenant the examples, the demo and the tests sign in to.

These values are public on purpose: they only ever exist inside the local emulator. A real tenant's
ids and secrets come from the Microsoft Entra admin center and never from this module.
"""

from __future__ import annotations

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "AUTH_CODE_LIFETIME",
    "DAEMON_CLIENT_ID",
    "DAEMON_CLIENT_SECRET",
    "DEFAULT_HOST",
    "DEFAULT_PAGES_PORT",
    "DEFAULT_PORT",
    "GRAPH_CLIENT_ID",
    "GRAPH_IDENTIFIER_URI",
    "ID_TOKEN_LIFETIME",
    "KEY_GRACE_PERIOD",
    "OTP_LIFETIME",
    "REFRESH_TOKEN_LIFETIME",
    "SPA_REFRESH_TOKEN_LIFETIME",
    "TENANT_ID",
    "TENANT_NAME",
    "TENANT_SUBDOMAIN",
    "TODO_API_APP_ROLES",
    "TODO_API_CLIENT_ID",
    "TODO_API_CLIENT_SECRET",
    "TODO_API_IDENTIFIER_URI",
    "TODO_API_SCOPES",
    "USERS",
    "WEB_APP_CLIENT_ID",
    "WEB_APP_CLIENT_SECRET",
    "WEB_APP_POST_LOGOUT_REDIRECT_URIS",
    "WEB_APP_REDIRECT_URIS",
]

TENANT_ID = "5f1c8a3e-2b7d-4c9e-8f0a-6d2e4b1c9a70"
TENANT_SUBDOMAIN = "contoso-dev"
TENANT_NAME = "Contoso (local emulator)"

# The web app that signs users in (a confidential client, like the Flask/Starlette examples).
WEB_APP_CLIENT_ID = "3c9a1f2e-7b4d-4e8a-9c1f-2a5b6d7e8f90"
WEB_APP_CLIENT_SECRET = "webapp-dev-secret~local-emulator-only"  # noqa: S105 - public on purpose
WEB_APP_REDIRECT_URIS = (
    "http://localhost:3000/auth/redirect",
    "http://127.0.0.1:3000/auth/redirect",
)
WEB_APP_POST_LOGOUT_REDIRECT_URIS = (
    "http://localhost:3000/",
    "http://127.0.0.1:3000/",
)

# The todo API: delegated scopes for users, app roles for daemons, a secret for on-behalf-of.
TODO_API_CLIENT_ID = "8e2d4c6a-1f3b-4a5c-9d7e-0b1c2d3e4f56"
TODO_API_CLIENT_SECRET = "todo-api-dev-secret~local-emulator-only"  # noqa: S105 - public on purpose
TODO_API_IDENTIFIER_URI = f"api://{TODO_API_CLIENT_ID}"
TODO_API_SCOPES = ("Todolist.Read", "Todolist.ReadWrite")
TODO_API_APP_ROLES = ("Todolist.Read.All", "Todolist.ReadWrite.All")

# A daemon (background job) holding both app roles of the todo API.
DAEMON_CLIENT_ID = "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
DAEMON_CLIENT_SECRET = "daemon-dev-secret~local-emulator-only"  # noqa: S105 - public on purpose

# Requests for OpenID scopes alone get an access token for Microsoft Graph, as in Entra.
GRAPH_CLIENT_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_IDENTIFIER_URI = "https://graph.microsoft.com"

# (email, password, display name)
USERS = (
    ("ada@example.com", "Ada-Lovelace-1815", "Ada Lovelace"),
    ("alan@example.com", "Alan-Turing-1912", "Alan Turing"),
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443  # https: discovery, token, keys
DEFAULT_PAGES_PORT = 8080  # http: authorize, sign-in and sign-up pages, logout

# Lifetimes in seconds, close to Entra's defaults.
ACCESS_TOKEN_LIFETIME = 3600
ID_TOKEN_LIFETIME = 3600
AUTH_CODE_LIFETIME = 600
REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600
# Entra: refresh tokens sent to a "spa" redirect URI expire 24 hours after the sign-in.
SPA_REFRESH_TOKEN_LIFETIME = 24 * 3600
OTP_LIFETIME = 600
# How long a rotated-out signing key stays published: longer than any token it signed lives.
KEY_GRACE_PERIOD = ACCESS_TOKEN_LIFETIME + 600
