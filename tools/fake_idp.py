"""A stand-in for the province's identity provider (统一身份认证) for development and tests.

It speaks OpenID Connect over a real HTTP socket, as the real provider would, so the web
front-end's sign-in (authorization code flow with PKCE, oidc-client-ts) and the gateway's
`remote_jwks` check run against the protocol itself:

- `GET /.well-known/openid-configuration`: the discovery document;
- `GET /authorize`: checks the client, its redirect URI and the PKCE challenge (S256 only), then
  shows a login page in Chinese to choose a sample person (`POST /authorize`), or, while the
  browser holds this provider's session cookie, signs in again at once (single sign-on) — so a
  front-end whose token has expired comes back with a new one without asking;
- `POST /token`: exchanges a code once, within 60 s, for the client and redirect URI it was issued
  to, only with the `code_verifier` whose SHA-256 is the challenge; answers an access token (a JWT
  for the audience `smart110` with the claims the services read: `sub`, `name`, `roles`, `station`,
  `district`, `department`) and an ID token;
- `GET /jwks`: the public key; a new RS256 key pair is made at every start;
- `GET /logout`: ends the session (end_session_endpoint).

Discovery, token and JWKS answer CORS (the browser calls them from the front-end's origin).
The issuer is the URL the provider is reached at (`--issuer`, default `http://HOST:PORT`).

    python -m tools.fake_idp --port 8090      # until Ctrl-C / SIGTERM
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

AUDIENCE = "smart110"
CLIENT_ID = "smart110-web"
CODE_TTL_SECONDS = 60
DEFAULT_TOKEN_TTL_SECONDS = 3600
# Lifetimes the login page offers, to try expiry and renewal without waiting an hour.
TOKEN_TTLS = {3600: "1 小时", 600: "10 分钟", 20: "20 秒（试验过期）"}
SESSION_COOKIE = "fake_idp_session"
# RFC 7636: 43-128 unreserved characters.
VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass(frozen=True)
class Person:
    sub: str
    name: str
    roles: tuple[str, ...]
    station: str = ""
    district: str = ""
    department: str = ""
    title: str = ""  # shown on the login page

    def claims(self) -> dict:
        out: dict = {"sub": self.sub, "name": self.name, "roles": list(self.roles)}
        for claim in ("station", "district", "department"):
            if getattr(self, claim):
                out[claim] = getattr(self, claim)
        return out


# Sample people of the sample city (sampledata/): the roles the front-end's screens are for.
PEOPLE = (
    Person("idp-commander", "李明", ("commander",), title="指挥中心 指挥长"),
    Person("idp-dispatcher", "张强", ("dispatcher",), station="S01", title="S01 派出所 调度员"),
    Person("idp-call-taker", "王芳", ("call_taker",), station="S01", title="接警员"),
    Person("idp-supervisor", "赵敏", ("supervisor",), title="值班领导"),
)


@dataclass
class Grant:
    """An authorization code, until it is exchanged."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    scope: str
    person: Person
    ttl: int
    expires: float
    used: bool = False


@dataclass
class Session:
    person: Person
    ttl: int


@dataclass
class FakeIdentityProvider:
    port: int = 8090
    host: str = "127.0.0.1"
    issuer: str = ""
    audience: str = AUDIENCE
    client_id: str = CLIENT_ID
    # Registered redirect URIs of the client; empty: any http URI on a loopback host.
    redirect_uris: tuple[str, ...] = ()
    people: tuple[Person, ...] = PEOPLE
    kid: str = field(default_factory=lambda: f"fake-idp-{secrets.token_hex(4)}")
    _grants: dict[str, Grant] = field(default_factory=dict)
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    issued: list[dict] = field(default_factory=list)  # access tokens' claims, for tests

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._jwk = {**json.loads(RSAAlgorithm.to_jwk(self._key.public_key())), "kid": self.kid, "use": "sig",
                     "alg": "RS256"}

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "FakeIdentityProvider":
        provider = self

        class Handler(_Handler):
            idp = provider

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        if not self.issuer:
            self.issuer = f"http://{self.host}:{self.port}"
        threading.Thread(target=self._server.serve_forever, name="fake-idp", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- protocol --------------------------------------------------------------------------------
    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid", "profile"],
            "claims_supported": ["sub", "name", "roles", "station", "district", "department"],
        }

    def jwks(self) -> dict:
        return {"keys": [self._jwk]}

    def redirect_allowed(self, uri: str) -> bool:
        if self.redirect_uris:
            return uri in self.redirect_uris
        url = urlsplit(uri)
        return url.scheme == "http" and url.hostname in ("127.0.0.1", "localhost", "::1") and not url.fragment

    def person(self, sub: str) -> Person | None:
        return next((p for p in self.people if p.sub == sub), None)

    def grant(self, params: dict[str, str], person: Person, ttl: int) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = Grant(
                client_id=params["client_id"], redirect_uri=params["redirect_uri"],
                challenge=params["code_challenge"], nonce=params.get("nonce", ""), scope=params.get("scope", ""),
                person=person, ttl=ttl, expires=time.time() + CODE_TTL_SECONDS)
        return code

    def open_session(self, person: Person, ttl: int) -> str:
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[sid] = Session(person, ttl)
        return sid

    def session(self, sid: str | None) -> Session | None:
        with self._lock:
            return self._sessions.get(sid or "")

    def end_session(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def exchange(self, form: dict[str, str]) -> tuple[int, dict]:
        """The token endpoint: (HTTP status, JSON body), errors as RFC 6749 section 5.2 says."""
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._grants.get(form.get("code", ""))
            if grant is None or grant.used or grant.expires < time.time():
                return 400, {"error": "invalid_grant", "error_description": "unknown, used or expired code"}
            grant.used = True  # one attempt per code, right or wrong
        if form.get("client_id") != grant.client_id:
            return 400, {"error": "invalid_grant", "error_description": "code issued to another client"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs from the authorization request's"}
        verifier = form.get("code_verifier", "")
        if not VERIFIER_RE.match(verifier) or _s256(verifier) != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "code_verifier does not match the code_challenge"}
        now = int(time.time())
        access = {"iss": self.issuer, "aud": self.audience, "azp": grant.client_id, "scope": grant.scope,
                  "iat": now, "exp": now + grant.ttl, "jti": secrets.token_hex(8), **grant.person.claims()}
        ident = {"iss": self.issuer, "aud": grant.client_id, "sub": grant.person.sub, "name": grant.person.name,
                 "iat": now, "exp": now + grant.ttl, "auth_time": now}
        if grant.nonce:
            ident["nonce"] = grant.nonce
        with self._lock:
            self.issued.append(access)
        return 200, {"access_token": self.sign(access), "id_token": self.sign(ident), "token_type": "Bearer",
                     "expires_in": grant.ttl, "scope": grant.scope}

    def sign(self, claims: dict, kid: str | None = None) -> str:
        """`claims` signed with this provider's key (under another key id, to forge a token in tests)."""
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": kid or self.kid})


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _with_query(uri: str, params: dict[str, str]) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}"


class _Handler(BaseHTTPRequestHandler):
    idp: FakeIdentityProvider
    server_version = "fake-idp"

    def log_message(self, fmt, *args):  # the query string carries codes and states: not logged
        print(f"{self.command} {urlsplit(self.path).path} -> {args[1] if len(args) > 1 else ''}", flush=True)

    # -- plumbing --------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: dict) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json",
                   {"Access-Control-Allow-Origin": "*"})

    def _page(self, status: int, title: str, body: str, headers: dict[str, str] | None = None) -> None:
        page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;background:#0b1a2e;color:#e6edf5}}main{{max-width:520px;margin:10vh auto;
padding:28px;background:#13263f;border-radius:8px}}label{{display:block;margin:8px 0}}button{{margin-top:14px;
padding:8px 24px}}.error{{color:#ff8080}}</style></head><body><main>{body}</main></body></html>"""
        self._send(status, page.encode(), "text/html; charset=utf-8", headers)

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

    def _sid(self) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie") or "")
        return cookie[SESSION_COOKIE].value if SESSION_COOKIE in cookie else None

    # -- routes ----------------------------------------------------------------------------------
    def do_OPTIONS(self):  # CORS preflight of the token endpoint
        self.send_response(HTTPStatus.NO_CONTENT)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, POST")
        self.send_header("Access-Control-Allow-Headers", "content-type, authorization")
        self.send_header("Access-Control-Max-Age", "600")
        self.end_headers()

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/.well-known/openid-configuration":
            self._json(200, self.idp.discovery())
        elif path == "/jwks":
            self._json(200, self.idp.jwks())
        elif path == "/authorize":
            self._authorize(self._query())
        elif path == "/logout":
            self._logout(self._query())
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self):
        path = urlsplit(self.path).path
        if path == "/token":
            status, doc = self.idp.exchange(self._form())
            self._json(status, doc)
        elif path == "/authorize":
            self._sign_in(self._form())
        else:
            self._json(404, {"error": "not_found"})

    def _check(self, params: dict[str, str]) -> str | None:
        """Why the authorization request cannot be answered at all (no redirect), or None."""
        if params.get("client_id") != self.idp.client_id:
            return "未知的应用（client_id）"
        if not self.idp.redirect_allowed(params.get("redirect_uri", "")):
            return "回调地址（redirect_uri）未登记"
        return None

    def _protocol_error(self, params: dict[str, str]) -> str | None:
        if params.get("response_type") != "code":
            return "unsupported_response_type"
        if "openid" not in params.get("scope", "").split():
            return "invalid_scope"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "invalid_request"  # PKCE is required
        return None

    def _authorize(self, params: dict[str, str]) -> None:
        problem = self._check(params)
        if problem:
            self._page(400, "无法登录", f'<h1>无法登录</h1><p class="error">{html.escape(problem)}</p>')
            return
        error = self._protocol_error(params)
        if error:
            self._redirect(_with_query(params["redirect_uri"], {"error": error, "state": params.get("state", "")}))
            return
        session = self.idp.session(self._sid())
        prompt = params.get("prompt", "").split()
        if session is not None and "login" not in prompt:
            code = self.idp.grant(params, session.person, session.ttl)
            self._redirect(_with_query(params["redirect_uri"], {"code": code, "state": params.get("state", "")}))
            return
        if "none" in prompt:
            self._redirect(_with_query(params["redirect_uri"], {"error": "login_required",
                                                                "state": params.get("state", "")}))
            return
        self._login_page(params)

    def _login_page(self, params: dict[str, str], error: str = "") -> None:
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in params.items() if k not in ("person", "ttl"))
        people = "".join(
            f'<label><input type="radio" name="person" value="{html.escape(p.sub)}"{" checked" if i == 0 else ""}> '
            f'{html.escape(p.name)}（{html.escape(p.title or "、".join(p.roles))}）</label>'
            for i, p in enumerate(self.idp.people))
        ttls = "".join(f'<option value="{ttl}">{html.escape(label)}</option>' for ttl, label in TOKEN_TTLS.items())
        self._page(200, "统一身份认证 · 登录", f"""<h1>统一身份认证</h1>
<p>开发与测试用的身份认证（替身）：选择一位人员登录 Smart110。</p>
{f'<p class="error">{html.escape(error)}</p>' if error else ''}
<form method="post" action="/authorize">{hidden}
<fieldset><legend>人员</legend>{people}</fieldset>
<label>令牌有效期 <select name="ttl">{ttls}</select></label>
<button type="submit" id="sign-in">登录</button></form>""")

    def _sign_in(self, form: dict[str, str]) -> None:
        problem = self._check(form)
        if problem:
            self._page(400, "无法登录", f'<h1>无法登录</h1><p class="error">{html.escape(problem)}</p>')
            return
        error = self._protocol_error(form)
        if error:
            self._redirect(_with_query(form["redirect_uri"], {"error": error, "state": form.get("state", "")}))
            return
        person = self.idp.person(form.get("person", ""))
        if person is None:
            self._login_page(form, "请选择一位人员")
            return
        ttl = int(form["ttl"]) if form.get("ttl", "").isdigit() and int(form["ttl"]) in TOKEN_TTLS \
            else DEFAULT_TOKEN_TTL_SECONDS
        sid = self.idp.open_session(person, ttl)
        code = self.idp.grant(form, person, ttl)
        self._redirect(_with_query(form["redirect_uri"], {"code": code, "state": form.get("state", "")}),
                       {"Set-Cookie": f"{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"})

    def _logout(self, params: dict[str, str]) -> None:
        self.idp.end_session(self._sid())
        cleared = {"Set-Cookie": f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"}
        back = params.get("post_logout_redirect_uri", "")
        if back and self.idp.redirect_allowed(back):
            self._redirect(back, cleared)
        else:
            self._page(200, "已退出", "<h1>已退出统一身份认证</h1>", cleared)


def main() -> None:
    parser = argparse.ArgumentParser(description="a stand-in identity provider speaking OpenID Connect")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--issuer", default="", help="the issuer URL (default http://HOST:PORT)")
    parser.add_argument("--audience", default=AUDIENCE, help="the access tokens' audience")
    parser.add_argument("--client-id", default=CLIENT_ID)
    parser.add_argument("--redirect-uri", action="append", default=[],
                        help="a registered redirect URI (repeat; default: any http URI on a loopback host)")
    args = parser.parse_args()
    idp = FakeIdentityProvider(port=args.port, host=args.host, issuer=args.issuer, audience=args.audience,
                               client_id=args.client_id, redirect_uris=tuple(args.redirect_uri)).start()
    print(f"identity provider (stand-in) on {idp.issuer}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    idp.stop()


if __name__ == "__main__":
    main()
