"""Mint development JWTs accepted by the Smart110 gateway.

The token is signed (RS256) with the development key in
``gateway/dev-keys/jwt-private.pem``; the gateway verifies it against the
matching public JWKS.  ``JWT_PRIVATE_KEY_PATH`` points to another key.

    python -m tools.token --role dispatcher --station S01
    python -m tools.token --role dispatcher,supervisor --sub u42 --ttl 600
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PRIVATE_KEY = REPO_ROOT / "gateway" / "dev-keys" / "jwt-private.pem"
DEFAULT_JWKS = REPO_ROOT / "gateway" / "dev-keys" / "jwks.json"

ISSUER = "smart110-dev"
AUDIENCE = "smart110"
DEFAULT_TTL_SECONDS = 8 * 3600
# Service credentials (services/runtime/identity.py): their own issuer and development key.
SERVICE_ISSUER = "smart110-services"
DEFAULT_SERVICE_KEY = REPO_ROOT / "gateway" / "dev-keys" / "service-private.pem"
SERVICE_TTL_SECONDS = 30 * 24 * 3600


def _default_key_path() -> Path:
    return Path(os.environ.get("JWT_PRIVATE_KEY_PATH") or DEFAULT_PRIVATE_KEY)


def _kid_for(private_key_path: Path) -> str | None:
    """Find the ``kid`` of the JWKS entry matching this private key.

    The JWKS is looked up next to the key (``jwks.json``), then in
    ``JWT_JWKS_PATH``.  Returns None when no matching entry is found.
    """
    candidates = [private_key_path.parent / "jwks.json"]
    if os.environ.get("JWT_JWKS_PATH"):
        candidates.append(Path(os.environ["JWT_JWKS_PATH"]))
    key = serialization.load_pem_private_key(private_key_path.read_bytes(), password=None)
    public_numbers = key.public_key().public_numbers()
    for path in candidates:
        if not path.is_file():
            continue
        for jwk in json.loads(path.read_text()).get("keys", []):
            if jwk.get("kty") != "RSA" or "kid" not in jwk:
                continue
            n = int.from_bytes(jwt.utils.base64url_decode(jwk["n"]), "big")
            if n == public_numbers.n:
                return jwk["kid"]
    return None


def mint(
    *,
    roles: list[str],
    station: str | None = None,
    sub: str = "dev-user",
    name: str | None = None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    private_key_path: str | os.PathLike[str] | None = None,
    district: str | None = None,
    department: str | None = None,
) -> str:
    """Return a signed RS256 JWT for the given identity.

    Claims: iss, aud, sub, roles (list), station, district and department (only
    when given), name (defaults to ``sub``), iat, exp.  The header carries the
    key's ``kid``.
    """
    if isinstance(roles, str):
        raise TypeError("roles must be a list of strings, not a string")
    key_path = Path(private_key_path) if private_key_path else _default_key_path()
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "roles": list(roles),
        "name": name if name is not None else sub,
        "iat": now,
        "exp": now + int(ttl_seconds),
    }
    for claim, value in (("station", station), ("district", district), ("department", department)):
        if value:
            claims[claim] = value
    headers = {}
    kid = _kid_for(key_path)
    if kid:
        headers["kid"] = kid
    return jwt.encode(claims, key_path.read_bytes(), algorithm="RS256", headers=headers)


def mint_service(service: str, *, ttl_seconds: int = SERVICE_TTL_SECONDS,
                 private_key_path: str | os.PathLike[str] | None = None) -> str:
    """A development service credential for `service` (role `service`), signed with the service key."""
    key_path = Path(private_key_path or os.environ.get("SERVICE_PRIVATE_KEY_PATH") or DEFAULT_SERVICE_KEY)
    now = int(time.time())
    claims = {"iss": SERVICE_ISSUER, "aud": AUDIENCE, "sub": f"service:{service}", "roles": ["service"],
              "name": service, "iat": now, "exp": now + int(ttl_seconds)}
    headers = {"kid": kid} if (kid := _kid_for_jwks(key_path, key_path.parent / "service-jwks.json")) else {}
    return jwt.encode(claims, key_path.read_bytes(), algorithm="RS256", headers=headers)


def _kid_for_jwks(private_key_path: Path, jwks_path: Path) -> str | None:
    if not jwks_path.is_file():
        return None
    n = serialization.load_pem_private_key(private_key_path.read_bytes(), password=None).public_key().public_numbers().n
    for jwk in json.loads(jwks_path.read_text()).get("keys", []):
        if jwk.get("kty") == "RSA" and "kid" in jwk and int.from_bytes(jwt.utils.base64url_decode(jwk["n"]), "big") == n:
            return jwk["kid"]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mint a development JWT for the Smart110 gateway.")
    parser.add_argument(
        "--role",
        action="append",
        required=True,
        help="role(s), comma-separated or repeated, e.g. dispatcher,supervisor",
    )
    parser.add_argument("--station", default=None, help="station id claim, e.g. S01")
    parser.add_argument("--sub", default="dev-user", help="subject (user id)")
    parser.add_argument("--name", default=None, help="display name (defaults to the subject)")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="lifetime in seconds")
    parser.add_argument("--key", default=None, help="private key PEM (default: JWT_PRIVATE_KEY_PATH or dev key)")
    args = parser.parse_args(argv)

    roles = [r.strip() for value in args.role for r in value.split(",") if r.strip()]
    if not roles:
        parser.error("at least one role is required")
    token = mint(
        roles=roles,
        station=args.station or None,
        sub=args.sub,
        name=args.name,
        ttl_seconds=args.ttl,
        private_key_path=args.key,
    )
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
