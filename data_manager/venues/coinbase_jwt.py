"""Signing Coinbase Advanced Trade subscriptions with a CDP API key, when the user has one.

The public channels (`level2`, `heartbeats`) need no JWT, but Coinbase recommends one ("most reliable").
With COINBASE_API_KEY (the key name, "organizations/{org_id}/apiKeys/{key_id}") and COINBASE_API_SECRET
(its EC private key, PEM; "\\n" escapes are accepted, as the docs suggest for one-line values) in the
environment, every subscribe message carries a fresh `jwt`. Secrets come from the environment only,
never from config.yml, and are never logged.

What a WebSocket JWT is (docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/
websocket-authentication, its Python sample uses PyJWT and cryptography; coinbase-advanced-py
`jwt_generator.build_ws_jwt`): ES256 over
    header {"alg": "ES256", "typ": "JWT", "kid": <key name>, "nonce": <random hex>}
    claims {"sub": <key name>, "iss": "cdp", "nbf": now, "exp": now + 120}
with no `uri` claim (that is for REST). It "expires after 2 minutes, after which all requests are
unauthenticated", so one is signed per message, on every (re)connect.

The signing packages are an optional extra (`requirements-jwt.txt`): without them, or with a key that
cannot sign, Coinbase runs unauthenticated and the user is told why in one line.
"""
from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

KEY_VARIABLE = "COINBASE_API_KEY"
SECRET_VARIABLE = "COINBASE_API_SECRET"
EXTRA = "requirements-jwt.txt"
LIFETIME_SECONDS = 120
ISSUER = "cdp"
_UNAUTHENTICATED = "subscribing unauthenticated"


class Signer:
    """Signs one fresh WebSocket JWT per call with the user's EC P-256 key."""

    def __init__(self, key_name: str, private_key: Any, encode: Callable[..., str],
                 clock: Callable[[], float] = time.time) -> None:
        self._key_name = key_name
        self._private_key = private_key
        self._encode = encode
        self._clock = clock

    def token(self) -> str:
        now = int(self._clock())
        claims = {"sub": self._key_name, "iss": ISSUER, "nbf": now, "exp": now + LIFETIME_SECONDS}
        headers = {"kid": self._key_name, "nonce": secrets.token_hex(16)}
        return self._encode(claims, self._private_key, algorithm="ES256", headers=headers)

    def __repr__(self) -> str:
        return f"Signer(key ...{self._key_name[-4:]})"   # never the secret


@dataclass(frozen=True)
class Credentials:
    """What the environment gave: a signer, or none; `problem` is the one line to show when keys are set
    but cannot be used."""

    signer: Signer | None = None
    problem: str | None = None


NONE = Credentials()


def _refused(why: str) -> Credentials:
    return Credentials(None, f"coinbase: {why}: {_UNAUTHENTICATED}")


def from_environment(environ: Mapping[str, str] | None = None,
                     clock: Callable[[], float] = time.time) -> Credentials:
    """A signer when both variables are set and usable; otherwise why not (nothing when neither is set)."""
    environ = os.environ if environ is None else environ
    key_name = environ.get(KEY_VARIABLE, "").strip()
    secret = environ.get(SECRET_VARIABLE, "").replace("\\n", "\n").strip()
    if not key_name and not secret:
        return NONE
    if not key_name or not secret:
        missing = KEY_VARIABLE if not key_name else SECRET_VARIABLE
        return _refused(f"{missing} is not set (both {KEY_VARIABLE} and {SECRET_VARIABLE} are needed)")
    try:
        import jwt
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError as exc:
        missing = {"jwt": "PyJWT"}.get(exc.name or "", exc.name or "a signing package")
        return _refused(f"API key set but {missing} is not installed (pip install -r {EXTRA})")
    encode = getattr(jwt, "encode", None)
    if not callable(encode):
        return _refused(f"the installed 'jwt' module is not PyJWT (pip install -r {EXTRA})")
    try:
        private_key = serialization.load_pem_private_key(secret.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        return _refused(f"{SECRET_VARIABLE} is not a PEM private key ({reason})")
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or private_key.curve.name != "secp256r1":
        return _refused(f"{SECRET_VARIABLE} is not an EC P-256 key (Advanced Trade signs with ES256; "
                        "an ECDSA API key is needed)")
    return Credentials(Signer(key_name, private_key, encode, clock))
