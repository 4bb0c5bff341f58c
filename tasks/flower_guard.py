"""Flower's exposure rule, checked where Flower reads its configuration (``flowerconfig.py``, loaded by every
``celery … flower`` started from the repository root): a bind address that is not loopback needs real
basic-auth credentials (``FLOWER_BASIC_AUTH=user:password``, neither part blank) or an OAuth provider
(``FLOWER_AUTH_PROVIDER``). ``--address=0.0.0.0`` on the command line is checked too: the rule runs after
Flower's final command-line parse."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class FlowerExposed(SystemExit):
    """Flower would listen beyond loopback without credentials."""


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` only listens on this machine ('' means every interface: not loopback)."""
    host = (address or "").strip().strip("[]")
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def has_real_credentials(basic_auth: Iterable[str] | str | None) -> bool:
    """Whether every basic-auth entry is ``user:password`` with neither part blank (and there is one)."""
    entries = [basic_auth] if isinstance(basic_auth, str) else list(basic_auth or [])
    entries = [entry for item in entries for entry in str(item).split(",")]
    if not entries:
        return False
    for entry in entries:
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password.strip():
            return False
    return True


def check_exposure(address: str | None, basic_auth: Iterable[str] | str | None, auth_provider: str | None) -> None:
    """FlowerExposed (exit status 1 with the reason) when Flower would be open beyond loopback."""
    if is_loopback(address) or auth_provider or has_real_credentials(basic_auth):
        return
    raise FlowerExposed(
        f"refusing to start Flower on {address or 'every interface'!r} without credentials: set "
        "FLOWER_BASIC_AUTH=user:password (neither blank) or bind to 127.0.0.1"
    )


def install(options) -> None:
    """Check Flower's final options (tornado ``options``) once they are parsed."""

    def check() -> None:
        check_exposure(options.address, options.basic_auth, getattr(options, "auth_provider", None))

    options.add_parse_callback(check)
