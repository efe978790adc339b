// Microsoft's @azure/msal-node against the emulator, doing what a Node web app does.
//
// Run by tests/test_node_clients.py, which starts the emulator and the todo API and passes their
// addresses in the environment; the emulator's CA is trusted through NODE_EXTRA_CA_CERTS (nothing
// here turns TLS checks off). Two msal-node lines run the same steps: the current one (7.x, which
// checks the discovered issuer) and 2.x, the one Microsoft's Node sample ships with.
//
// Steps: auth code URL with PKCE, the emulator's sign-in form driven over HTTP (email, then
// password), code redemption, silent acquisition from the cache and through the refresh token,
// client credentials, on-behalf-of, the todo API over HTTP with the user's token, sign-out
// through a logout URL built from the authority string, as the sample builds it, and a revoked
// sign-in that msal-node must recognise as needing interaction (Entra's suberror "bad_token").

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";

import * as msal7 from "@azure/msal-node";
import * as msal2 from "msal-node-2";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run this through tests/test_node_clients.py`);
  return value;
};

const HTTPS_BASE = env("DEVIDP_HTTPS_BASE"); // https://127.0.0.1:<port>
const TENANT_ID = env("DEVIDP_TENANT_ID");
const SUBDOMAIN = env("DEVIDP_TENANT_SUBDOMAIN");
const WEB = { id: env("WEB_CLIENT_ID"), secret: env("WEB_CLIENT_SECRET") };
const API = { id: env("API_CLIENT_ID"), secret: env("API_CLIENT_SECRET"), uri: env("API_URI") };
const DAEMON = { id: env("DAEMON_CLIENT_ID"), secret: env("DAEMON_CLIENT_SECRET") };
const REDIRECT_URI = env("REDIRECT_URI");
const POST_LOGOUT_REDIRECT_URI = env("POST_LOGOUT_REDIRECT_URI");
const POST_LOGOUT_LANDS_AT = env("POST_LOGOUT_LANDS_AT");
const USER = { email: env("USER_EMAIL"), password: env("USER_PASSWORD") };
const TODO_API = env("TODO_API_BASE_URL");
const TOKENS_OUT = env("TOKENS_OUT");

const READ = `${API.uri}/Todolist.Read`;
const WRITE = `${API.uri}/Todolist.ReadWrite`;
const collected = {};

// -- a browser with a cookie jar, reading the emulator's pages -----------------------------------

class Browser {
  constructor() {
    this.cookies = new Map();
  }

  async fetch(url, options = {}) {
    const headers = { ...(options.headers || {}) };
    const host = new URL(url).hostname;
    const jar = [...this.cookies].filter(([, c]) => c.host === host);
    if (jar.length) headers.cookie = jar.map(([name, c]) => `${name}=${c.value}`).join("; ");
    const response = await fetch(url, { ...options, headers, redirect: "manual" });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => a.trim().toLowerCase() === "max-age=0");
      if (expired || !value) this.cookies.delete(name);
      else this.cookies.set(name, { value, host });
    }
    return response;
  }

  // Follow redirects that stay at the emulator (its https origin hands browsers to its pages).
  async open(url) {
    let response = await this.fetch(url);
    for (let hop = 0; hop < 3 && [302, 307].includes(response.status); hop++) {
      const next = new URL(response.headers.get("location"), url).href;
      if (!/\/oauth2\/v2\.0\/(authorize|logout)$/.test(new URL(next).pathname)) break;
      url = next;
      response = await this.fetch(url);
    }
    return { response, url };
  }

  async post(url, fields) {
    return this.fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

const unescape = (s) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#x27;/g, "'")
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");

// Every form on a page: its action and its fields (inputs with a name).
function forms(html) {
  const found = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const action = /action="([^"]*)"/.exec(match[1]);
    const id = /id="([^"]*)"/.exec(match[1]);
    const fields = {};
    for (const input of match[2].matchAll(/<input\b([^>]*)>/g)) {
      const name = /name="([^"]*)"/.exec(input[1]);
      const value = /value="([^"]*)"/.exec(input[1]);
      if (name) fields[unescape(name[1])] = value ? unescape(value[1]) : "";
    }
    found.push({ action: action ? unescape(action[1]) : "", id: id && id[1], fields });
  }
  return found;
}

function formPosting(html, suffix) {
  const form = forms(html).find((f) => f.action.endsWith(suffix));
  assert.ok(form, `the page has no form posting to ${suffix}:\n${html.slice(0, 400)}`);
  return form;
}

// Sign in on the emulator's pages: email, then password; return the response sent to the app.
async function signIn(browser, authUrl) {
  const { response: first, url } = await browser.open(authUrl);
  assert.equal(first.status, 200, `the sign-in page: HTTP ${first.status}`);
  const emailPage = await first.text();
  const emailForm = formPosting(emailPage, "/login/email");
  const second = await browser.post(new URL(emailForm.action, url).href, {
    ...emailForm.fields,
    email: USER.email,
  });
  assert.equal(second.status, 200);
  const passwordForm = formPosting(await second.text(), "/login/password");
  const third = await browser.post(new URL(passwordForm.action, url).href, {
    ...passwordForm.fields,
    password: USER.password,
  });
  return appResponse(third);
}

// What the emulator sends the app: a form_post page or a redirect with the parameters.
async function appResponse(response) {
  if (response.status === 302) {
    const location = new URL(response.headers.get("location"));
    return Object.fromEntries(location.searchParams);
  }
  assert.equal(response.status, 200, `expected the form_post page, got HTTP ${response.status}`);
  const form = forms(await response.text()).find((f) => f.id === "response");
  assert.ok(form, "no form_post response form");
  assert.equal(form.action, REDIRECT_URI);
  return form.fields;
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));
}

async function todoApi(method, path, token, body) {
  const response = await fetch(`${TODO_API}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

// -- the flows, once per msal-node line -----------------------------------------------------------

const LINES = [
  // msal-node 7 checks the discovered issuer: the tenant-id authority matches its CIAM pattern.
  { name: "msal-node 7", msal: msal7, authority: `${HTTPS_BASE}/${TENANT_ID}/` },
  // With the tenant's domain in the path the issuer (a GUID host) matches no pattern: msal-node 7
  // then needs the issuer's host among knownAuthorities, against Entra as here.
  {
    name: "msal-node 7, domain authority",
    msal: msal7,
    authority: `${HTTPS_BASE}/${SUBDOMAIN}.onmicrosoft.com/`,
    extraKnown: [`${TENANT_ID}.ciamlogin.com`],
  },
  // Microsoft's sample: msal-node 2, an authority with no tenant in the path (its default is
  // https://<subdomain>.ciamlogin.com/), and the logout URL built from that string.
  { name: "msal-node 2", msal: msal2, authority: `${HTTPS_BASE}/` },
];

const quiet = { loggerOptions: { loggerCallback() {}, piiLoggingEnabled: false } };

for (const line of LINES) {
  const { msal, authority } = line;
  const knownAuthorities = [new URL(authority).host, ...(line.extraKnown || [])];
  const confidential = (client) =>
    new msal.ConfidentialClientApplication({
      auth: { clientId: client.id, clientSecret: client.secret, authority, knownAuthorities },
      system: quiet,
    });

  test(`${line.name}: sign in, call the API, refresh, daemon, on-behalf-of, sign out`, async () => {
    const out = (collected[line.name] = {});
    const web = confidential(WEB);
    const browser = new Browser();

    // 1. The auth code URL with PKCE, as the sample's AuthProvider builds it.
    const pkce = await new msal.CryptoProvider().generatePkceCodes();
    const state = "state-" + line.name.replace(/\W/g, "");
    const authUrl = await web.getAuthCodeUrl({
      scopes: [READ],
      redirectUri: REDIRECT_URI,
      responseMode: "form_post",
      codeChallenge: pkce.challenge,
      codeChallengeMethod: "S256",
      state,
    });
    const url = new URL(authUrl);
    assert.equal(url.searchParams.get("code_challenge"), pkce.challenge);
    assert.equal(url.searchParams.get("code_challenge_method"), "S256");

    // 2. The person signs in on the emulator's pages.
    const answer = await signIn(browser, authUrl);
    assert.equal(answer.state, state);
    assert.ok(answer.code, JSON.stringify(answer));

    // 3. The code is redeemed with the PKCE verifier.
    const signedIn = await web.acquireTokenByCode({
      code: answer.code,
      scopes: [READ],
      redirectUri: REDIRECT_URI,
      codeVerifier: pkce.verifier,
    });
    assert.ok(signedIn.accessToken);
    assert.equal(signedIn.idTokenClaims.iss, `https://${TENANT_ID}.ciamlogin.com/${TENANT_ID}/v2.0`);
    assert.equal(signedIn.account.username, USER.email);
    assert.equal(signedIn.account.tenantId, TENANT_ID);
    assert.equal(claims(signedIn.accessToken).scp, "Todolist.Read");
    out.user = signedIn.accessToken;

    // 4. The todo API over HTTP with the user's token: list, add, delete.
    let api = await todoApi("GET", "/api/todolist", signedIn.accessToken);
    assert.equal(api.status, 200, JSON.stringify(api.json));
    assert.ok(Array.isArray(api.json));
    api = await todoApi("POST", "/api/todolist", signedIn.accessToken, { description: "x" });
    assert.equal(api.status, 403, "Todolist.Read alone may not write");

    // 5. Silent: from the cache, then a scope only the refresh token can get.
    const accounts = await web.getTokenCache().getAllAccounts();
    assert.equal(accounts.length, 1);
    const cached = await web.acquireTokenSilent({ account: accounts[0], scopes: [READ] });
    assert.equal(cached.accessToken, signedIn.accessToken);
    const writing = await web.acquireTokenSilent({ account: accounts[0], scopes: [WRITE] });
    assert.notEqual(writing.accessToken, signedIn.accessToken);
    assert.equal(claims(writing.accessToken).scp, "Todolist.ReadWrite");
    const refreshed = await web.acquireTokenSilent({
      account: accounts[0],
      scopes: [READ],
      forceRefresh: true,
    });
    assert.notEqual(refreshed.accessToken, signedIn.accessToken);
    out.refreshed = refreshed.accessToken;

    const description = `from ${line.name}`;
    api = await todoApi("POST", "/api/todolist", writing.accessToken, { description });
    assert.equal(api.status, 201, JSON.stringify(api.json));
    const created = api.json;
    assert.equal(created.description, description);
    assert.equal(created.owner, claims(writing.accessToken).oid);
    api = await todoApi("GET", "/api/todolist", refreshed.accessToken);
    assert.ok(api.json.some((item) => item.id === created.id));
    api = await todoApi("DELETE", `/api/todolist/${created.id}`, writing.accessToken);
    assert.equal(api.status, 204);

    // 6. Client credentials: the daemon's app-only token, with the API's app roles.
    const daemon = await confidential(DAEMON).acquireTokenByClientCredential({
      scopes: [`${API.uri}/.default`],
    });
    assert.deepEqual(claims(daemon.accessToken).roles, [
      "Todolist.Read.All",
      "Todolist.ReadWrite.All",
    ]);
    api = await todoApi("GET", "/api/todolist", daemon.accessToken);
    assert.equal(api.status, 200);
    out.daemon = daemon.accessToken;

    // 7. On-behalf-of: the API exchanges the user's token for a Microsoft Graph token.
    const obo = await confidential(API).acquireTokenOnBehalfOf({
      oboAssertion: signedIn.accessToken,
      scopes: ["https://graph.microsoft.com/User.Read"],
    });
    const graph = claims(obo.accessToken);
    assert.equal(graph.aud, "00000003-0000-0000-c000-000000000000");
    assert.equal(graph.oid, claims(signedIn.accessToken).oid);
    assert.equal(graph.azp, API.id);
    out.obo = obo.accessToken;

    // 8. Sign-out through a URL built from the authority string, as the sample does:
    //    `${authority}${subdomain}.onmicrosoft.com/oauth2/v2.0/logout?post_logout_redirect_uri=`
    const host = `${new URL(authority).origin}/`;
    const logoutUri =
      `${host}${SUBDOMAIN}.onmicrosoft.com/oauth2/v2.0/logout` +
      `?post_logout_redirect_uri=${POST_LOGOUT_REDIRECT_URI}`;
    const { response: loggedOut } = await browser.open(logoutUri);
    assert.equal(loggedOut.status, 302, `logout answered HTTP ${loggedOut.status}`);
    assert.equal(loggedOut.headers.get("location"), POST_LOGOUT_LANDS_AT);
    assert.equal(browser.cookies.size, 0, "the emulator's session cookie is cleared");

    // 9. Signed out at the emulator too: a silent sign-in fails, an interactive one asks again.
    const silentUrl = await web.getAuthCodeUrl({
      scopes: [READ],
      redirectUri: REDIRECT_URI,
      prompt: "none",
      codeChallenge: pkce.challenge,
      codeChallengeMethod: "S256",
    });
    const { response: silent } = await browser.open(silentUrl);
    assert.equal(silent.status, 302);
    assert.equal(new URL(silent.headers.get("location")).searchParams.get("error"), "login_required");
    const { response: again } = await browser.open(authUrl);
    assert.equal(again.status, 200);
    formPosting(await again.text(), "/login/email");

    // 10. The sign-in is revoked (a replayed code revokes what the first redemption obtained):
    //     the refresh fails with suberror bad_token, which msal-node turns into
    //     InteractionRequiredAuthError, dropping the refresh token from its cache.
    const replay = await fetch(`${HTTPS_BASE}/${TENANT_ID}/oauth2/v2.0/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: WEB.id,
        client_secret: WEB.secret,
        code: answer.code,
        redirect_uri: REDIRECT_URI,
        code_verifier: pkce.verifier,
      }),
    });
    assert.equal(replay.status, 400);
    assert.deepEqual((await replay.json()).error_codes, [54005]);
    const refreshTokens = () =>
      Object.keys(JSON.parse(web.getTokenCache().serialize()).RefreshToken);
    assert.equal(refreshTokens().length, 1);
    await assert.rejects(
      web.acquireTokenSilent({ account: accounts[0], scopes: [READ], forceRefresh: true }),
      (error) => {
        assert.ok(error instanceof msal.InteractionRequiredAuthError, `${error.name}: ${error}`);
        assert.equal(error.errorCode, "invalid_grant");
        assert.equal(error.subError, "bad_token");
        return true;
      },
    );
    assert.equal(refreshTokens().length, 0, "msal-node dropped the revoked refresh token");
  });
}

test.after(() => {
  writeFileSync(TOKENS_OUT, JSON.stringify(collected));
});
