"""The emulator's service account and its OAuth token endpoint (JWT bearer grants).

`ServiceAccount.create` makes a fresh RSA key per emulator run; `key_file` is the JSON a
`google://` source reads, with `token_uri` pointing at this emulator. `TokenIssuer.exchange`
does what Google's endpoint does with a grant: the RS256 signature must verify against this
run's key (checked by google-auth's verifier, not by hand), `iss` must be the service account,
`aud` the token endpoint, `iat`/`exp` a short-lived window around now, `sub` a user of the
workspace (or the admin), and every `scope` one the domain-wide delegation authorises.
Refusals use Google's OAuth answers: `invalid_grant` (400), `unauthorized_client` (401).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_errors
from google.auth import jwt

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
"""google-auth puts this audience in every grant, whatever the key's token_uri says."""
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = 3600
MAX_GRANT_LIFETIME = 3600
CLOCK_SKEW = 60
DELEGATED_SCOPES = frozenset(
    "https://www.googleapis.com/auth/" + name
    for name in (
        "admin.directory.user.readonly",
        "gmail.readonly",
        "calendar.readonly",
        "chat.spaces.readonly",
        "chat.messages.readonly",
        "drive.metadata.readonly",
        "drive.readonly",
    )
)
"""What the emulated domain-wide delegation authorises: read-only scopes, nothing that writes."""


class TokenRefused(Exception):
    """A grant the token endpoint refuses, with its OAuth error and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """This run's service account: identity and key pair."""

    client_email: str
    client_id: str
    key_id: str
    private_pem: str
    public_pem: str

    @classmethod
    def create(cls, project: str = "sweepledger-emulator") -> ServiceAccount:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return cls(
            f"sweeper@{project}.iam.gserviceaccount.com",
            str(10**20 + secrets.randbelow(9 * 10**20)),
            secrets.token_hex(20),
            private,
            public,
        )

    def key_file(self, token_uri: str) -> dict[str, Any]:
        """The service account key JSON, as the Cloud console would download it."""
        project = self.client_email.split("@")[1].split(".")[0]
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": self.key_id,
            "private_key": self.private_pem,
            "client_email": self.client_email,
            "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + self.client_email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        }


@dataclass(frozen=True, slots=True)
class Grant:
    """What an access token stands for."""

    subject: str
    scopes: frozenset[str]
    expires: float
    client_id: str


class TokenIssuer:
    """Verifies grants, issues access tokens and looks them up; see the module docstring."""

    def __init__(
        self, account: ServiceAccount, token_uri: str, is_user: Callable[[str], bool]
    ) -> None:
        self.account = account
        self.token_uri = token_uri
        self.is_user = is_user
        self._tokens: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def exchange(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The token response for a grant, or TokenRefused."""
        if form.get("grant_type") != JWT_BEARER:
            raise TokenRefused(
                "unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', '')}"
            )
        claims = self._verified_claims(form.get("assertion", ""))
        subject = str(claims.get("sub") or "").casefold()
        if not subject or not self.is_user(subject):
            raise TokenRefused("invalid_grant", "Invalid email or User ID")
        scopes = frozenset(str(claims.get("scope") or "").split())
        if not scopes or not scopes <= DELEGATED_SCOPES:
            raise TokenRefused(
                "unauthorized_client",
                "Client is unauthorized to retrieve "
                "access tokens using this method, or client not authorized for "
                "any of the scopes requested.",
                status=401,
            )
        token = "ya29.emu-" + secrets.token_urlsafe(48)
        grant = Grant(subject, scopes, time.time() + TOKEN_LIFETIME, self.account.client_id)
        with self._lock:
            self._tokens[token] = grant
        return {"access_token": token, "expires_in": TOKEN_LIFETIME - 1, "token_type": "Bearer"}

    def _verified_claims(self, assertion: str) -> Mapping[str, Any]:
        try:
            header = jwt.decode_header(assertion)
        except (ValueError, auth_errors.GoogleAuthError):
            raise TokenRefused("invalid_grant", "Invalid JWT: not a signed JWT") from None
        if header.get("alg") != "RS256":
            raise TokenRefused("invalid_grant", "Invalid JWT: alg must be RS256")
        if header.get("kid") not in (None, self.account.key_id):
            raise TokenRefused("invalid_grant", "Invalid JWT Signature.")
        try:
            claims: Mapping[str, Any] = jwt.decode(
                assertion,
                certs=self.account.public_pem,
                verify=True,
                clock_skew_in_seconds=CLOCK_SKEW,
            )
        except (ValueError, auth_errors.GoogleAuthError) as error:
            text = str(error)
            if "expired" in text.lower() or "too early" in text.lower():
                raise TokenRefused(
                    "invalid_grant",
                    "Invalid JWT: Token must be a short-lived "
                    "token (60 minutes) and in a reasonable timeframe. Check "
                    "your iat and exp values in the JWT claim.",
                ) from None
            raise TokenRefused("invalid_grant", "Invalid JWT Signature.") from None
        if claims.get("iss") != self.account.client_email:
            raise TokenRefused("invalid_grant", "Invalid JWT: iss is not this service account")
        if claims.get("aud") not in (self.token_uri, GOOGLE_TOKEN_URI):
            raise TokenRefused("invalid_grant", "Invalid JWT: aud is not the token endpoint")
        if int(claims["exp"]) - int(claims["iat"]) > MAX_GRANT_LIFETIME:
            raise TokenRefused(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token "
                "(60 minutes) and in a reasonable timeframe.",
            )
        return claims

    def lookup(self, token: str) -> Grant | None:
        """The grant of a live access token; None for unknown or expired ones."""
        with self._lock:
            grant = self._tokens.get(token)
        return grant if grant is not None and grant.expires > time.time() else None

    def revoke_all(self) -> int:
        """Forget every token (the next calls answer 401 and clients must refresh)."""
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
        return count
