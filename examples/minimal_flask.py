"""The smallest Flask web app: sign people in with Entra External ID, call the todo API as them."""

import os

import httpx
from flask import Flask, jsonify

from entra_ciam import EntraConfig, TokenAcquirer, current_user, login_required
from entra_ciam.wsgi import SignInMiddleware

config = EntraConfig.from_env()  # ENTRA_AUTHORITY, ENTRA_CLIENT_ID, ENTRA_REDIRECT_URI...
config.require("api_client_id", purpose="Calling the todo API")
API_URL = os.environ.get("TODO_API_URL", "http://127.0.0.1:5000/api/todolist")
SCOPE = f"api://{config.api_client_id}/Todolist.Read"
app = Flask(__name__)
app.wsgi_app = SignInMiddleware(app.wsgi_app, config, scopes=[SCOPE])
acquirer = TokenAcquirer()


@app.get("/")
@login_required
def todos():
    token = acquirer.acquire_token_for_user([SCOPE])
    answer = httpx.get(API_URL, headers={"Authorization": f"Bearer {token}"})
    return jsonify(user=current_user()["name"], todos=answer.json())


if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", "3000")))
