"""Storefront API keys: `Authorization: Api-Key <key>`; scopes are checked per action."""

import hashlib
import time
from dataclasses import dataclass
from typing import cast

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from marketing.models import ApiKey
from marketing.roles import user_can_edit

KEYWORD = "Api-Key"


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """Stands in for request.user when a storefront key authenticated the request."""

    key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False

    @property
    def pk(self) -> str:
        return f"apikey:{self.key.pk}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword != KEYWORD:
            return None
        key = api_key_authenticate(raw)
        return ApiKeyPrincipal(key=key), key

    def authenticate_header(self, request) -> str:
        return KEYWORD


# Verified keys, by a digest of the raw key, for KEY_CACHE_SECONDS: the hot endpoints then
# authenticate without a query or a hash check. A key revoked in the admin stops working
# within that time in every process (at once in the one that saved it).
KEY_CACHE_SECONDS = 30.0
KEY_CACHE_SIZE = 1000
_verified: dict[str, tuple[float, ApiKey]] = {}


def api_key_authenticate(raw: str) -> ApiKey:
    """The active key `raw` (as sent after the keyword), its use recorded at most once a
    minute; raises AuthenticationFailed. Shared by ApiKeyAuthentication and the hot paths
    that answer without DRF (experiments.api.experiment_assign_view)."""
    raw = raw.strip()
    if not raw:
        raise exceptions.AuthenticationFailed("Empty API key.")
    key = _verified_key(raw)
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def _verified_key(raw: str) -> ApiKey:
    digest = hashlib.sha256(raw.encode()).hexdigest()
    now = time.monotonic()
    hit = _verified.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        key = cast(ApiKey, ApiKey.objects.get_from_key(raw))
    except ApiKey.DoesNotExist as exc:
        raise exceptions.AuthenticationFailed("Invalid API key.") from exc
    if key.has_expired or key.revoked:
        raise exceptions.AuthenticationFailed("API key revoked or expired.")
    if len(_verified) >= KEY_CACHE_SIZE:
        _verified.clear()
    _verified[digest] = (now + KEY_CACHE_SECONDS, key)
    return key


def api_key_cache_clear(**kwargs) -> None:
    """Connected to ApiKey's post_save and post_delete (cache invalidation only)."""
    _verified.clear()


class HasScope(permissions.BasePermission):
    """Checks `view.required_scopes`, a dict from "action.METHOD", action or method to scope.

    A storefront key needs the scope. A logged-in user (the browsable docs) may read with any
    role and write only when their role may edit.
    """

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        scope = _required_scope(request, view)
        if isinstance(request.auth, ApiKey):
            if scope is None:
                return True
            if request.auth.has_scope(scope):
                return True
            self.message = f"This API key lacks the scope '{scope}'."
            return False
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return user_can_edit(user)


def _required_scope(request, view) -> str | None:
    scopes = getattr(view, "required_scopes", {})
    action = getattr(view, "action", None)
    for key in (f"{action}.{request.method}", action, request.method):
        if key in scopes:
            return scopes[key]
    return None


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "marketing.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Send `Api-Key <key>`. Create keys with `manage.py create_api_key`.",
        }
