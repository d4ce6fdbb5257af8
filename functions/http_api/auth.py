"""Who is calling and whether they may: Bearer keys outside Appwrite, roles everywhere.

Keys are compared in constant time and never logged or echoed. A missing or wrong key is 401; a known caller
whose role may not use the route is 403.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.errors import BadRequest, Forbidden, Unauthorized
from services.settings import Settings

from .request import ANONYMOUS, Caller, Role


@dataclass(frozen=True)
class AuthConfig:
    api_key: str | None = None  # the game backend: role ``server``
    admin_key: str | None = None  # operators: role ``admin``
    admin_user_ids: frozenset[str] = frozenset()  # Appwrite users treated as admins

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        return cls(
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            admin_key=settings.admin_key.get_secret_value() if settings.admin_key else None,
            admin_user_ids=frozenset(settings.admin_user_ids),
        )

    def __repr__(self) -> str:  # never print a key, not even in a traceback
        return (
            f"AuthConfig(api_key={'set' if self.api_key else None}, admin_key={'set' if self.admin_key else None}, "
            f"admin_user_ids={sorted(self.admin_user_ids)})"
        )


def _same(presented: bytes, key: str | None) -> bool:
    if not key:
        return False
    return hmac.compare_digest(presented, key.encode())


def caller_from_authorization(header: str | None, config: AuthConfig) -> Caller:
    """The caller an ``Authorization`` header proves; no header is anonymous, a bad one raises 401."""
    if header is None or not header.strip():
        return ANONYMOUS
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <key>'")
    presented = token.encode()
    # Compare against both keys every time so timing says nothing about which one (if any) matched.
    is_server = _same(presented, config.api_key)
    is_admin = _same(presented, config.admin_key)
    if is_server:
        return Caller(Role.SERVER)
    if is_admin:
        return Caller(Role.ADMIN)
    raise Unauthorized("invalid API key")


# Appwrite's ID rule (``Validator/Key.php``, appwrite-facts.md 3.4, "IDs"): up to 36 characters from
# [A-Za-z0-9._-], not starting with one of ``._-``. A user id Appwrite injected always matches it.
APPWRITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,35}")
USER_ID_HEADER = "x-appwrite-user-id"


def caller_from_appwrite(
    user_id: str | None,
    *,
    signed_in_role: Role,
    admin_user_ids: Iterable[str] = (),
    no_user_is_server: bool = False,
) -> Caller:
    """The caller of an Appwrite execution, failing closed.

    Appwrite sets ``x-appwrite-user-id`` when a signed-in user executed the function through the API, and leaves
    it empty for an API key, for an anonymous caller and for a custom-domain request (appwrite-facts.md 4.2).
    An execution without a user id is therefore the game backend (``server``) only when the deployment says
    the function admits no guests (``no_user_is_server``, from ``AI_USAGE_APPWRITE_NO_USER_IS_SERVER``);
    otherwise it is anonymous, so every route but health and the OpenAPI document answers 401.

    ``signed_in_role`` is what a signed-in user is in this function: ``admin`` where the function's execute
    permission already admits only admins, else ``user``. Surrounding whitespace is HTTP's optional whitespace
    and is dropped (a value of spaces only is no user id); anything else that is not an Appwrite id cannot
    have come from Appwrite and raises ``BadRequest`` rather than being matched against the admin list.
    """
    user_id = (user_id or "").strip(" \t")  # HTTP optional whitespace: spaces and tabs
    if not user_id:
        return Caller(Role.SERVER) if no_user_is_server else ANONYMOUS
    if not APPWRITE_ID.fullmatch(user_id):
        raise BadRequest(
            f"header {USER_ID_HEADER} must be an Appwrite user id: 1 to 36 characters from A-Z, a-z, 0-9, "
            "'.', '_' and '-', not starting with '.', '_' or '-'"
        )
    if user_id in frozenset(admin_user_ids):
        return Caller(Role.ADMIN, user_id)
    return Caller(signed_in_role, user_id)


def authorize(caller: Caller, roles: frozenset[Role], owner_param: str | None, params: Mapping[str, str]) -> None:
    """Raise ``Unauthorized`` (no credentials) or ``Forbidden`` (wrong role) unless ``caller`` may proceed."""
    if Role.ANONYMOUS in roles or caller.role in roles:
        return
    if caller.role is Role.ANONYMOUS:
        raise Unauthorized(
            "this route needs credentials: 'Authorization: Bearer <key>' (on Appwrite: a signed-in user, or an API "
            "key where AI_USAGE_APPWRITE_NO_USER_IS_SERVER is true)"
        )
    if caller.role is Role.USER and owner_param is not None and params.get(owner_param) == caller.user_id:
        return
    if caller.role is Role.USER and owner_param is not None:
        raise Forbidden("a user may read only their own usage")
    allowed = ", ".join(sorted(role.value for role in roles))
    raise Forbidden(f"the {caller.role.value} role may not use this route (allowed: {allowed})")
