"""Production sign-in, in a real browser: the suite's gateway and services trust the identity
provider (its stand-in, tools/fake_idp.py, which the stack starts and whose issuer it configures);
the big screen opened without a token goes to the provider, signs in with the authorization code
flow and PKCE, comes back and its live links work with the provider's access token; when that token
expires the screen says so and signs in again. A token of an issuer the gateway does not trust, or
signed by another key in the trusted issuer's name, is refused (401)."""
from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import jwt
import pytest

from tests.conftest import ROOT
from tests.web.test_big_screen import CHROMIUM, SCREENSHOTS, _missing, _skip
from tools.fake_idp import FakeIdentityProvider
from tools.token import mint

pytestmark = pytest.mark.web

SCRIPT = ROOT / "web" / "tests" / "sign-in.mjs"
PERSON = "idp-commander"
# The shortest lifetime the provider's login page offers: the test waits it out.
TTL_SECONDS = 20


@pytest.fixture(scope="module")
def sign_in_run(stack):
    reason = _missing()
    if reason:
        _skip(reason)
    for old in SCREENSHOTS.glob("sign-in-*.png"):
        old.unlink()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["node", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, "GATEWAY_URL": stack.gateway_url, "IDP_URL": stack.idp_issuer, "PERSON": PERSON,
             "TTL": str(TTL_SECONDS), "SCREENSHOTS": str(SCREENSHOTS), "CHROMIUM": CHROMIUM})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "failure" not in result, result["failure"] + f"\nscreenshots in {SCREENSHOTS}"
    return result


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _api(stack, token: str, path: str = "/v1/stations") -> httpx.Response:
    return httpx.get(f"{stack.gateway_url}{path}", params={"pageSize": 5},
                     headers={"Authorization": f"Bearer {token}"}, timeout=20)


def test_the_gateway_tells_the_front_end_where_to_sign_in(stack):
    settings = httpx.get(f"{stack.gateway_url}/config.json", timeout=20)
    if settings.status_code == 401 and _missing():
        _skip(_missing())
    assert settings.status_code == 200
    assert settings.json() == {"oidc": {"authority": stack.idp_issuer, "clientId": "smart110-web",
                                        "scope": "openid profile"}}


def test_the_screen_without_a_token_signs_in_at_the_provider_with_pkce(sign_in_run, stack):
    result = sign_in_run
    asked = result["authorize"]
    assert asked["response_type"] == "code" and asked["client_id"] == "smart110-web"
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["redirect_uri"] == f"{stack.gateway_url}/"
    assert "openid" in asked["scope"].split() and asked["state"]
    assert "统一身份认证" in result["loginPageText"] and "李明" in result["loginPageText"]
    # Back on the big screen, the code gone from the address bar, the live links open.
    assert result["addressBar"] == f"{stack.gateway_url}/#/big-screen"
    assert {name: link["state"] for name, link in result["links"].items()
            if name in ("警情", "警力", "预警")} == {"警情": "live", "警力": "live", "预警": "live"}
    assert result["errors"] == []
    # The browser spoke to the gateway and to the provider, nowhere else.
    origins = {f"{httpx.URL(url).scheme}://{httpx.URL(url).netloc.decode()}" for url in result["requests"]}
    assert origins == {stack.gateway_url, stack.idp_issuer}
    assert f"{stack.idp_issuer}/token" in result["requests"]


def test_the_screen_calls_the_api_with_the_providers_access_token(sign_in_run, stack):
    token = sign_in_run["firstToken"]
    claims = _claims(token)
    assert claims["iss"] == stack.idp_issuer and claims["aud"] == "smart110"
    assert (claims["sub"], claims["roles"]) == (PERSON, ["commander"])
    # The gateway and the service behind it both accept it (while it lasts).
    if claims["exp"] > time.time() + 2:
        assert _api(stack, token).status_code == 200


def test_an_expired_sign_in_is_announced_and_renewed_by_itself(sign_in_run, stack):
    result = sign_in_run
    assert "登录已过期" in result["expiredText"]
    first, second = _claims(result["firstToken"]), _claims(result["secondToken"])
    assert second["iss"] == stack.idp_issuer and second["sub"] == first["sub"]
    assert second["exp"] > first["exp"]
    assert result["addressBarAgain"] == f"{stack.gateway_url}/#/big-screen"
    assert all(result["linksAgain"][name]["state"] == "live" for name in ("警情", "警力", "预警"))
    assert _api(stack, result["secondToken"]).status_code == 200


def test_tokens_of_an_untrusted_issuer_are_refused(stack):
    claims = {"aud": "smart110", "sub": PERSON, "name": "李明", "roles": ["commander"],
              "iat": int(time.time()), "exp": int(time.time()) + 600}
    stranger = FakeIdentityProvider(port=0).start()
    try:
        # The same protocol, the same claims, another issuer: not trusted.
        foreign = stranger.sign({**claims, "iss": stranger.issuer})
        assert _api(stack, foreign).status_code == 401
        # Another key in the trusted issuer's name, under its key id: the signature does not verify.
        trusted_kid = httpx.get(f"{stack.idp_issuer}/jwks", timeout=20).json()["keys"][0]["kid"]
        forged = stranger.sign({**claims, "iss": stack.idp_issuer}, kid=trusted_kid)
        assert _api(stack, forged).status_code == 401
    finally:
        stranger.stop()
    # The development issuer's tokens still work beside the provider's.
    assert _api(stack, mint(roles=["commander"], sub="e2e-sign-in-dev")).status_code == 200
