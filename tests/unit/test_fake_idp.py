"""The identity provider's stand-in speaks OpenID Connect as a real provider does: discovery, the
authorization code flow with PKCE (S256), single use codes, registered redirect URIs, keys at its
jwks_uri, and single sign-on while its session lasts."""
from __future__ import annotations

import base64
import hashlib
import secrets

import httpx
import jwt
import pytest

from tools.fake_idp import FakeIdentityProvider

REDIRECT = "http://127.0.0.1:18080/"


@pytest.fixture()
def idp():
    provider = FakeIdentityProvider(port=0).start()
    yield provider
    provider.stop()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _authorize(challenge: str, **over) -> dict:
    return {"response_type": "code", "client_id": "smart110-web", "redirect_uri": REDIRECT, "scope": "openid profile",
            "state": secrets.token_hex(4), "nonce": "n-1", "code_challenge": challenge,
            "code_challenge_method": "S256", **over}


def _code(location: str) -> str:
    return httpx.URL(location).params["code"]


def _exchange(idp, code: str, verifier: str, **over) -> httpx.Response:
    return httpx.post(f"{idp.issuer}/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": REDIRECT, "client_id": "smart110-web",
                                                    "code_verifier": verifier, **over}, timeout=10)


def test_a_person_signs_in_and_the_access_token_verifies_against_the_published_keys(idp):
    doc = httpx.get(f"{idp.issuer}/.well-known/openid-configuration", timeout=10).json()
    assert doc["issuer"] == idp.issuer and doc["code_challenge_methods_supported"] == ["S256"]
    verifier, challenge = _pkce()
    browser = httpx.Client(timeout=10)
    params = _authorize(challenge)
    page = browser.get(doc["authorization_endpoint"], params=params)
    assert page.status_code == 200 and "统一身份认证" in page.text and "张强" in page.text
    signed_in = browser.post(doc["authorization_endpoint"], data={**params, "person": "idp-dispatcher", "ttl": "600"})
    assert signed_in.status_code == 302
    location = httpx.URL(signed_in.headers["location"])
    assert str(location).startswith(REDIRECT) and location.params["state"] == params["state"]
    answer = _exchange(idp, location.params["code"], verifier)
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 600
    key = jwt.PyJWKClient(doc["jwks_uri"]).get_signing_key_from_jwt(tokens["access_token"]).key
    claims = jwt.decode(tokens["access_token"], key, algorithms=["RS256"], audience="smart110", issuer=idp.issuer)
    assert (claims["sub"], claims["roles"], claims["station"], claims["name"]) == (
        "idp-dispatcher", ["dispatcher"], "S01", "张强")
    assert claims["exp"] - claims["iat"] == 600
    ident = jwt.decode(tokens["id_token"], key, algorithms=["RS256"], audience="smart110-web")
    assert ident["nonce"] == "n-1"
    # While the session lasts, the next authorization request signs in again without a page.
    again = browser.get(doc["authorization_endpoint"], params=_authorize(_pkce()[1]))
    assert again.status_code == 302 and "code=" in again.headers["location"]
    # Until it is ended.
    browser.get(doc["end_session_endpoint"])
    assert browser.get(doc["authorization_endpoint"], params=_authorize(_pkce()[1])).status_code == 200


def test_a_code_needs_its_verifier_its_client_and_its_redirect_and_is_used_once(idp):
    browser = httpx.Client(timeout=10)
    verifier, challenge = _pkce()
    codes = []
    for _ in range(4):
        signed_in = browser.post(f"{idp.issuer}/authorize", data={**_authorize(challenge), "person": "idp-commander"})
        codes.append(_code(signed_in.headers["location"]))
    wrong_verifier = _exchange(idp, codes[0], _pkce()[0])
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    # One attempt per code: the right verifier after a wrong one does not help.
    assert _exchange(idp, codes[0], verifier).status_code == 400
    assert _exchange(idp, codes[1], verifier, client_id="other").json()["error"] == "invalid_grant"
    assert _exchange(idp, codes[2], verifier, redirect_uri="http://127.0.0.1:9/").json()["error"] == "invalid_grant"
    assert _exchange(idp, codes[3], verifier).status_code == 200
    assert _exchange(idp, codes[3], verifier).status_code == 400  # used


def test_bad_authorization_requests_are_refused(idp):
    _, challenge = _pkce()
    unknown_client = httpx.get(f"{idp.issuer}/authorize", params=_authorize(challenge, client_id="x"), timeout=10)
    assert unknown_client.status_code == 400 and "client_id" in unknown_client.text
    elsewhere = httpx.get(f"{idp.issuer}/authorize", params=_authorize(challenge, redirect_uri="https://evil.example/"),
                          timeout=10)
    assert elsewhere.status_code == 400 and "location" not in elsewhere.headers
    # PKCE is required, with S256.
    for over in ({"code_challenge": ""}, {"code_challenge_method": "plain"}):
        refused = httpx.get(f"{idp.issuer}/authorize", params=_authorize(challenge, **over), timeout=10)
        assert refused.status_code == 302 and httpx.URL(refused.headers["location"]).params["error"] == "invalid_request"
    no_session = httpx.get(f"{idp.issuer}/authorize", params=_authorize(challenge, prompt="none"), timeout=10)
    assert httpx.URL(no_session.headers["location"]).params["error"] == "login_required"
