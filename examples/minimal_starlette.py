"""Smallest Starlette app (uvicorn examples.minimal_starlette:app): sign in, call the todo API."""

import os

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from entra_ciam import EntraConfig, TokenAcquirer, current_user, login_required
from entra_ciam.asgi import SignInMiddleware

config = EntraConfig.from_env()  # ENTRA_AUTHORITY, ENTRA_CLIENT_ID, ENTRA_REDIRECT_URI...
config.require("api_client_id", purpose="Calling the todo API")
API_URL = os.environ.get("TODO_API_URL", "http://127.0.0.1:5000/api/todolist")
SCOPE = f"api://{config.api_client_id}/Todolist.Read"
acquirer = TokenAcquirer()


@login_required
async def todos(request):
    token = await acquirer.acquire_token_for_user_async([SCOPE])
    async with httpx.AsyncClient() as client:
        answer = await client.get(API_URL, headers={"Authorization": f"Bearer {token}"})
    return JSONResponse({"user": current_user()["name"], "todos": answer.json()})


app = SignInMiddleware(Starlette(routes=[Route("/", todos)]), config, scopes=[SCOPE])
