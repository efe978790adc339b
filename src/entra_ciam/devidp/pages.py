"""The HTML a person sees: sign-in, sign-up, sign-out and error pages, with no external assets.

Every dynamic value is escaped here and nowhere else. Each page carries a per-response CSP nonce
for its one inline style (and the form_post page's one inline script).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from html import escape

__all__ = [
    "FlowView",
    "error_page",
    "form_post",
    "index",
    "message_page",
    "pick_account",
    "sign_in_email",
    "sign_in_password",
    "sign_up_code",
    "sign_up_details",
    "sign_up_email",
    "signed_out",
]

_CSS = """
:root{color-scheme:light;--blue:#0067b8;--ink:#1b1b1b;--muted:#616161;--line:#8a8886;--bad:#c50f1f}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;background:#f2f2f2 linear-gradient(160deg,#eef4fb,#f7f7f7);
font:15px/1.45 "Segoe UI",system-ui,-apple-system,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);display:flex;flex-direction:column;align-items:center}
.ribbon{width:100%;background:#fff4ce;color:#5c4400;font-size:13px;text-align:center;
padding:6px 12px;border-bottom:1px solid #f0dc9c}
main{width:100%;max-width:440px;margin:7vh 16px 24px;background:#fff;padding:44px;
box-shadow:0 2px 6px rgba(0,0,0,.2)}
.brand{display:flex;align-items:center;gap:10px;font-weight:600;font-size:15px;color:#5e5e5e}
.logo{width:24px;height:24px;border-radius:5px;background:var(--blue);color:#fff;display:grid;
place-items:center;font-size:14px;font-weight:700}
h1{font-size:24px;font-weight:600;margin:18px 0 6px}
p{margin:8px 0}.muted{color:var(--muted);font-size:13px}
.identity{display:inline-block;margin-top:14px;font-size:15px}
label{display:block;font-size:13px;color:var(--muted);margin-top:18px}
input[type=email],input[type=password],input[type=text]{width:100%;font:inherit;padding:6px 0;
border:0;border-bottom:1px solid var(--line);outline:0;background:transparent}
input:focus{border-bottom:2px solid var(--blue)}
.error{color:var(--bad);margin:14px 0 0}
.actions{display:flex;justify-content:flex-end;gap:8px;margin-top:28px}
button{font:inherit;min-width:108px;padding:6px 16px;border:0;background:var(--blue);color:#fff;
cursor:pointer}
button.secondary{background:#ccc;color:var(--ink)}
button.link{background:none;color:var(--blue);min-width:0;padding:0}
button.account{display:block;width:100%;text-align:left;background:#fff;color:var(--ink);
border-bottom:1px solid #e1e1e1;padding:12px 4px}button.account:hover{background:#f2f2f2}
.frames{display:none}
a{color:var(--blue);text-decoration:none}a:hover{text-decoration:underline}
.links{margin-top:22px;font-size:13px}
dl{font-size:13px;display:grid;grid-template-columns:max-content 1fr;gap:4px 12px}
dt{color:var(--muted)}dd{margin:0;word-break:break-all}
code{font:12px/1.4 ui-monospace,Consolas,monospace;background:#f3f3f3;padding:1px 4px}
footer{font-size:12px;color:var(--muted);margin-bottom:24px}
"""


@dataclasses.dataclass(frozen=True, slots=True)
class FlowView:
    """What a sign-in page needs to know about the pending request."""

    flow_id: str
    tenant_name: str
    app_name: str
    base: str  # the tenant's path prefix on the pages port, e.g. "/<tenant-id>"


def _layout(title: str, body: str, nonce: str, tenant_name: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{escape(title)} - {escape(tenant_name)}</title>
<style nonce="{nonce}">{_CSS}</style></head>
<body><div class="ribbon">Local Entra External ID emulator (entra-ciam dev-idp): for development
only, never enter a real password here.</div>
<main>
<div class="brand"><span class="logo" aria-hidden="true">{escape(tenant_name[:1].upper())}</span>
{escape(tenant_name)}</div>
{body}
</main>
<footer>entra-ciam dev-idp</footer>
</body></html>"""


def _error(message: str | None) -> str:
    return f'<p class="error" role="alert">{escape(message)}</p>' if message else ""


def _hidden(flow: FlowView) -> str:
    return f'<input type="hidden" name="flow" value="{escape(flow.flow_id)}">'


def sign_in_email(flow: FlowView, nonce: str, *, email: str = "", error: str | None = None) -> str:
    body = f"""
<h1>Sign in</h1>
<p class="muted">to continue to {escape(flow.app_name)}</p>
<form method="post" action="{escape(flow.base)}/login/email" novalidate>
{_hidden(flow)}
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="username" autofocus required
 value="{escape(email)}">
{_error(error)}
<div class="actions"><button type="submit">Next</button></div>
</form>
<p class="links">No account? <a href="{escape(flow.base)}/signup?flow={escape(flow.flow_id)}">Create
one</a></p>"""
    return _layout("Sign in", body, nonce, flow.tenant_name)


def pick_account(
    flow: FlowView, nonce: str, accounts: Sequence[tuple[str, str]], *, error: str | None = None
) -> str:
    """Entra's "Pick an account": the accounts signed in here, then "Use another account"."""
    buttons = "\n".join(
        f'''<form method="post" action="{escape(flow.base)}/login/select">
{_hidden(flow)}<input type="hidden" name="email" value="{escape(email)}">
<button class="account" type="submit">{escape(name)}<br><span class="muted">{escape(email)}
 &middot; Signed in</span></button></form>'''
        for email, name in accounts
    )
    body = f"""
<h1>Pick an account</h1>
<p class="muted">to continue to {escape(flow.app_name)}</p>
{buttons}
{_error(error)}
<p class="links">
<a href="{escape(flow.base)}/login?flow={escape(flow.flow_id)}">Use another account</a></p>"""
    return _layout("Pick an account", body, nonce, flow.tenant_name)


def sign_in_password(flow: FlowView, nonce: str, *, email: str, error: str | None = None) -> str:
    body = f"""
<a class="identity" href="{escape(flow.base)}/login?flow={escape(flow.flow_id)}">&larr;
 {escape(email)}</a>
<h1>Enter password</h1>
<form method="post" action="{escape(flow.base)}/login/password" novalidate>
{_hidden(flow)}
<input type="email" name="email" autocomplete="username" value="{escape(email)}" hidden readonly>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" autofocus
 required>
{_error(error)}
<div class="actions"><button type="submit">Sign in</button></div>
</form>"""
    return _layout("Enter password", body, nonce, flow.tenant_name)


def sign_up_email(flow: FlowView, nonce: str, *, email: str = "", error: str | None = None) -> str:
    body = f"""
<h1>Create account</h1>
<p class="muted">for {escape(flow.app_name)}</p>
<form method="post" action="{escape(flow.base)}/signup/email" novalidate>
{_hidden(flow)}
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="email" autofocus required
 value="{escape(email)}">
{_error(error)}
<div class="actions"><button type="submit">Next</button></div>
</form>
<p class="links">Already have an account?
 <a href="{escape(flow.base)}/login?flow={escape(flow.flow_id)}">Sign in</a></p>"""
    return _layout("Create account", body, nonce, flow.tenant_name)


def sign_up_code(flow: FlowView, nonce: str, *, email: str, error: str | None = None) -> str:
    body = f"""
<span class="identity">{escape(email)}</span>
<h1>Verify email</h1>
<p>Enter the code we sent to {escape(email)}.</p>
<p class="muted">The emulator prints the code on its console.</p>
<form method="post" action="{escape(flow.base)}/signup/code" novalidate>
{_hidden(flow)}
<label for="otp">Code</label>
<input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" autofocus
 required maxlength="8">
{_error(error)}
<div class="actions"><button type="submit">Next</button></div>
</form>
<form method="post" action="{escape(flow.base)}/signup/email">
{_hidden(flow)}<input type="hidden" name="email" value="{escape(email)}">
<p class="links"><button class="link" type="submit">Resend code</button></p>
</form>"""
    return _layout("Verify email", body, nonce, flow.tenant_name)


def sign_up_details(
    flow: FlowView, nonce: str, *, email: str, display_name: str = "", error: str | None = None
) -> str:
    body = f"""
<span class="identity">{escape(email)}</span>
<h1>Create your password</h1>
<form method="post" action="{escape(flow.base)}/signup/details" novalidate>
{_hidden(flow)}
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" autofocus
 required minlength="8">
<label for="display_name">Display name</label>
<input id="display_name" name="display_name" type="text" autocomplete="name" required
 value="{escape(display_name)}">
{_error(error)}
<div class="actions"><button type="submit">Create</button></div>
</form>"""
    return _layout("Create your password", body, nonce, flow.tenant_name)


def form_post(redirect_uri: str, params: Mapping[str, str], nonce: str, tenant_name: str) -> str:
    """response_mode=form_post: the browser posts the result to the app."""
    fields = "\n".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in params.items()
    )
    body = f"""
<h1>Signing you in&hellip;</h1>
<form id="response" method="post" action="{escape(redirect_uri)}">
{fields}
<p class="muted">If nothing happens, continue below.</p>
<div class="actions"><button type="submit">Continue</button></div>
</form>
<script nonce="{nonce}">document.getElementById("response").submit();</script>"""
    return _layout("Signing you in", body, nonce, tenant_name)


def error_page(
    *, code: int, error: str, description: str, correlation_id: str, nonce: str, tenant_name: str
) -> str:
    body = f"""
<h1>Sorry, but we&rsquo;re having trouble signing you in.</h1>
<p>AADSTS{code}: {escape(description.split(": ", 1)[-1])}</p>
<dl>
<dt>Error</dt><dd><code>{escape(error)}</code></dd>
<dt>Correlation ID</dt><dd><code>{escape(correlation_id)}</code></dd>
</dl>
<p class="muted">The app that sent you here asked for something this tenant does not allow. Its
developer can fix the request or the registration.</p>"""
    return _layout("Error", body, nonce, tenant_name)


def message_page(title: str, lines: Sequence[str], nonce: str, tenant_name: str) -> str:
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in lines)
    return _layout(title, f"<h1>{escape(title)}</h1>{paragraphs}", nonce, tenant_name)


def signed_out(
    nonce: str,
    tenant_name: str,
    *,
    note: str | None = None,
    frames: Sequence[str] = (),
    continue_to: str | None = None,
) -> str:
    """The signed-out page; ``frames`` are front-channel logout URLs, ``continue_to`` the app."""
    extra = f'<p class="muted">{escape(note)}</p>' if note else ""
    if frames:
        iframes = "".join(
            f'<iframe src="{escape(url)}" title="sign-out"></iframe>' for url in frames
        )
        extra += f'<div class="frames" aria-hidden="true">{iframes}</div>'
    if continue_to is not None:
        extra += f"""<p><a id="continue" href="{escape(continue_to)}">Continue</a></p>
<script nonce="{nonce}">window.addEventListener("load",function(){{
location.replace(document.getElementById("continue").href);}});</script>"""
    body = f"""
<h1>You signed out of your account</h1>
<p>It&rsquo;s a good idea to close all browser windows.</p>{extra}"""
    return _layout("Signed out", body, nonce, tenant_name)


def index(
    nonce: str,
    tenant_name: str,
    rows: Sequence[tuple[str, str]],
    *,
    discovery: str | None = None,
    note: str | None = None,
) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd><code>{escape(v)}</code></dd>" for k, v in rows)
    link = (
        f'<p><a href="{escape(discovery)}">OpenID Connect discovery document</a></p>'
        if discovery
        else ""
    )
    extra = f'<p class="muted">{escape(note)}</p>' if note else ""
    body = f"""
<h1>Local tenant</h1>
<p class="muted">Point your app at the authority below. Tokens it issues validate only against
this emulator.</p>
<dl>{items}</dl>{link}{extra}"""
    return _layout("Local tenant", body, nonce, tenant_name)
