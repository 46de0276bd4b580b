"""Tracking links of one message: signed tokens, click-redirect rewriting and the open pixel.

Every link a recipient can follow carries a token that names the message (its idempotency
key) and, for clicks, the target URL; the token is an HMAC over both, so

- a forged or altered token is refused (400) and redirects nowhere: the redirect target comes
  only from a token we signed, never from the request, so the click endpoint is no open
  redirect;
- the endpoints need no database lookup to know what a request means, only to record it.

Tokens are `<payload>.<mac>` in URL-safe base64: the payload is `key` or `key\\nurl`, the MAC
is HMAC-SHA256 (keyed by SECRET_KEY through `salted_hmac`, one salt per kind of link, so an
open token is no click token) cut to 128 bits, enough against forgery and short enough for an
SMS. Keys in SECRET_KEY_FALLBACKS are still accepted, so rotating the secret does not break
links already in inboxes.

`message_track` rewrites a rendered message for sending: every http(s) link of the HTML
becomes `/t/c/<token>`, a 1x1 pixel `/t/o/<token>` goes before `</body>`, and the SMS text and
the push URL get click links too. The unsubscribe link (`/t/u/<token>`) is left as it is: it is
ours, and counting it as a click would make every unsubscribe an engagement.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import re
from collections.abc import Callable
from html import unescape as html_unescape

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import constant_time_compare

from campaigns.templating import MessageLinks, RenderedMessage

OPEN_SALT = "campaigns.tracking.open"
CLICK_SALT = "campaigns.tracking.click"
UNSUBSCRIBE_SALT = "campaigns.tracking.unsubscribe"
MAC_BYTES = 16
MAX_URL_LENGTH = 2000
# The 1x1 transparent GIF the open pixel answers with.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

_HREF = re.compile(
    r"""(<(?:a|area)\b[^>]*?\bhref\s*=\s*)("[^"]*"|'[^']*'|[^\s>"']+)""", re.IGNORECASE
)
_TEXT_URL = re.compile(r"""https?://[^\s<>"']+""")
_TEXT_URL_TRAILING = ".,;:!?)]}'\""
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_SPACE = re.compile(r"\s")


class InvalidTokenError(Exception):
    """Not a token we signed (forged, altered, cut, or of another kind)."""


# --- tokens ---------------------------------------------------------------------------------


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    """URL-safe base64 without padding (what `base64.urlsafe_b64encode` gives, without its
    two layers of calls: this runs twice per link of every email)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=32)
def _mac_key(salt: str, secret: str) -> bytes:
    """The key django.utils.crypto.salted_hmac derives from the salt and the secret, derived
    once per pair instead of once per link."""
    return hashlib.sha256((salt + secret).encode()).digest()


def _mac(salt: str, payload: bytes, secret: str) -> bytes:
    return hmac.digest(_mac_key(salt, secret), payload, "sha256")[:MAC_BYTES]


def token_sign(salt: str, *parts: str) -> str:
    """A token over `parts` (none may contain a newline)."""
    payload = "\n".join(parts).encode()
    return f"{_b64(payload)}.{_b64(_mac(salt, payload, settings.SECRET_KEY))}"


def token_read(salt: str, token: str, *, parts: int) -> list[str]:
    """The parts of a token signed with `salt`, or InvalidTokenError."""
    encoded, _, mac_text = token.partition(".")
    try:
        payload, mac = _unb64(encoded), _unb64(mac_text)
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError("not a token") from exc
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(constant_time_compare(mac, _mac(salt, payload, s)) for s in secrets):
        raise InvalidTokenError("bad signature")
    try:
        values = payload.decode().split("\n")
    except UnicodeDecodeError as exc:
        raise InvalidTokenError("not a token") from exc
    if len(values) != parts or not values[0]:
        raise InvalidTokenError("not a token of this kind")
    return values


def trackable_url(url: str) -> bool:
    """Only absolute http(s) URLs are redirected to (no `javascript:`, no relative paths)."""
    return (
        url.lower().startswith(("http://", "https://"))
        and len(url) <= MAX_URL_LENGTH
        and not _SPACE.search(url)
    )


def click_token_read(token: str) -> tuple[str, str]:
    """(message key, target URL) of a click token."""
    key, url = token_read(CLICK_SALT, token, parts=2)
    if not trackable_url(url):
        raise InvalidTokenError("not an http(s) target")
    return key, url


def click_target(url: str) -> str:
    """The target of one of our click links (a provider's own click tracking reports the
    link it saw, which is ours), else `url` itself."""
    prefix = _absolute("campaigns:track-click", "")
    if not url.startswith(prefix):
        return url
    try:
        return click_token_read(url[len(prefix) :])[1]
    except InvalidTokenError:
        return url


def open_token_read(token: str) -> str:
    return token_read(OPEN_SALT, token, parts=1)[0]


def unsubscribe_token_read(token: str) -> str:
    return token_read(UNSUBSCRIBE_SALT, token, parts=1)[0]


# --- URLs -----------------------------------------------------------------------------------


_PLACEHOLDER = "PLACEHOLDER"


@functools.lru_cache(maxsize=64)
def _route(name: str, base: str) -> str:
    return base + reverse(name, kwargs={"token": _PLACEHOLDER})


def _absolute(name: str, token: str) -> str:
    """The URL resolved once per route (an email has about ten links, and `reverse` costs
    more than the rest of the rewrite)."""
    return _route(name, settings.PUBLIC_BASE_URL.rstrip("/")).replace(_PLACEHOLDER, token)


def _click_signer(key: str) -> Callable[[str], str]:
    """`click_url` for the links of one message: the route, the MAC key and the key's part of
    the payload looked up once per message instead of once per link (an email has about ten
    links; the lookups cost more than the HMAC)."""
    head, _, tail = _route("campaigns:track-click", settings.PUBLIC_BASE_URL.rstrip("/")).partition(
        _PLACEHOLDER
    )
    mac_key = _mac_key(CLICK_SALT, settings.SECRET_KEY)
    prefix = f"{key}\n".encode()

    def sign(url: str) -> str:
        payload = prefix + url.encode()
        mac = hmac.digest(mac_key, payload, "sha256")[:MAC_BYTES]
        return f"{head}{_b64(payload)}.{_b64(mac)}{tail}"

    return sign


def click_url(key: str, url: str) -> str:
    """The click link of `url` in message `key`: /t/c/<token over key and url>."""
    return _click_signer(key)(url)


def open_url(key: str) -> str:
    return _absolute("campaigns:track-open", token_sign(OPEN_SALT, key))


def unsubscribe_url(key: str) -> str:
    return _absolute("campaigns:track-unsubscribe", token_sign(UNSUBSCRIBE_SALT, key))


def message_links(key: str) -> MessageLinks:
    """The per-message links a template can use (`{{ unsubscribe_url }}`), also sent in the
    List-Unsubscribe header."""
    return MessageLinks(unsubscribe_url=unsubscribe_url(key))


# --- rewriting ------------------------------------------------------------------------------


def _tracked_prefix() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + "/t/"


@functools.lru_cache(maxsize=4096)
def _href_target(quoted: str, ours: str) -> str | None:
    """The URL an `href` value (as written, quotes included) sends a click to, or None when
    it is not tracked. Cached: the recipients of a campaign share most of their links (the
    shop's, the catalogue's items)."""
    raw = quoted[1:-1] if quoted[:1] in "\"'" else quoted
    url = html_unescape(raw).strip()
    if not trackable_url(url) or url.startswith(ours):
        return None
    return url


def html_links_rewrite(html: str, key: str) -> str:
    """Every http(s) `href` of an `<a>` or `<area>` becomes a click link (our own /t/ links
    and anything else, mailto: or #anchors, are left alone)."""
    ours = _tracked_prefix()
    sign = _click_signer(key)

    def replace(match: re.Match) -> str:
        url = _href_target(match.group(2), ours)
        if url is None:
            return match.group(0)
        return f'{match.group(1)}"{sign(url)}"'

    return _HREF.sub(replace, html)


def text_links_rewrite(text: str, key: str) -> str:
    """http(s) URLs in plain text (an SMS) become click links; trailing punctuation stays
    outside the link."""
    ours = _tracked_prefix()

    def replace(match: re.Match) -> str:
        url = match.group(0)
        stripped = url.rstrip(_TEXT_URL_TRAILING)
        if not stripped or url.startswith(ours) or not trackable_url(stripped):
            return url
        return click_url(key, stripped) + url[len(stripped) :]

    return _TEXT_URL.sub(replace, text)


def pixel_append(html: str, key: str) -> str:
    pixel = (
        f'<img src="{open_url(key)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px" />'
    )
    ends = list(_BODY_END.finditer(html))
    if ends:
        at = ends[-1].start()
        return html[:at] + pixel + html[at:]
    return html + pixel


def message_track(rendered: RenderedMessage, key: str) -> RenderedMessage:
    """The message as sent: click links and the open pixel in an email's HTML, click links in
    an SMS and behind a push notification's URL. In-app messages are read through the API and
    stay as rendered."""
    channel = rendered.channel
    if channel == "email" and rendered.html:
        return dataclasses.replace(
            rendered, html=pixel_append(html_links_rewrite(rendered.html, key), key)
        )
    if channel == "sms":
        return dataclasses.replace(rendered, text=text_links_rewrite(rendered.text, key))
    if channel == "push" and trackable_url(rendered.url):
        return dataclasses.replace(rendered, url=click_url(key, rendered.url))
    return rendered


def status_callback_url() -> str:
    """Where Twilio posts an SMS's delivery statuses (the SMS provider appends the message
    key as `message_id`)."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("campaigns:webhook-twilio-status")
