"""Where a model call may go: the rule against server-side request forgery (SSRF) through a model endpoint.

An editor sets an endpoint's `api_base`, and the server then sends requests there and reports what happened. Left
open, that lets an editor reach what only the server can: the cloud's metadata service (169.254.169.254), the
database, Redis, other services on the private network. So by default a model call goes to public addresses only:

- loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16 — metadata services — and fe80::/10) and every other
  non-public address are refused unless `EVALAPP_ENDPOINT_ALLOWED_HOSTS` lists the host name, the address or a
  network holding it;
- private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) are allowed with
  `EVALAPP_ENDPOINT_ALLOW_PRIVATE=true`, or one by one through the allowed hosts.

An address is judged after resolving (so `2130706433`, `0x7f.1` and a DNS name are judged by where they lead) and
after unwrapping the IPv4 address inside an IPv6 one (`::ffff:10.0.0.1`, 6to4, NAT64). The rule is checked when an
endpoint is saved and again on every connection a model call opens (`guarded`): the HTTP client's own name lookups
go through it, so a redirect, or a DNS answer that changed since the endpoint was saved, meets the same rule at the
moment of connecting, and only to checked addresses is a connection made.

No Django here: the settings arrive as an `EgressPolicy` (judges.preparation builds it for each call).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_HOSTS_SETTING = "EVALAPP_ENDPOINT_ALLOWED_HOSTS"
ALLOW_PRIVATE_SETTING = "EVALAPP_ENDPOINT_ALLOW_PRIVATE"

PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network) for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

# Kinds of refused address, and what allows each.
LOOPBACK = "a loopback address (this machine)"
LINK_LOCAL = "a link-local address (where cloud metadata services answer)"
PRIVATE = "a private-network address"
NOT_PUBLIC = "not a public address"

# The system's resolver. Tests replace it (monkeypatch `judges.egress.system_getaddrinfo`) to make a name lead
# anywhere; `guarded` resolves through it, so the HTTP client's lookups do too.
system_getaddrinfo: Callable[..., list] = socket.getaddrinfo


class EgressRefused(OSError):
    """A model call may not go to `address`. An OSError, so an HTTP client treats it as a failed connection (and
    stops); `judges.llm.complete` then reports it as a configuration error, never retried."""

    def __init__(self, host: str, address: str, kind: str, remedy: str):
        self.host, self.address, self.kind, self.remedy = host, address, kind, remedy
        where = address if host == address else f"{address} (where {host} leads)"
        super().__init__(f"{where} is {kind}; evalapp calls models at public addresses only: {remedy}")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, IPv4-compatible, 6to4, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def kind_of(address: IPAddress) -> str | None:
    """Why `address` is refused by default (one of the kinds above), or None for a public address."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return kind_of(inner)
    if address.is_loopback:
        return LOOPBACK
    if address.is_link_local:
        return LINK_LOCAL
    if any(address in network for network in PRIVATE_NETWORKS):
        return PRIVATE
    if address.is_multicast or address.is_unspecified or address.is_reserved or not address.is_global:
        return NOT_PUBLIC
    return None


def parse_address(text: str) -> IPAddress:
    """An address as a resolver returns it (IPv6 perhaps with a %zone)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def parse_allowed(entries: Iterable[str]) -> tuple[tuple[str, ...], tuple[IPNetwork, ...]]:
    """`EVALAPP_ENDPOINT_ALLOWED_HOSTS` entries → (host names, networks). A name matches itself; `.example.com` also
    matches every name under it; an address or a CIDR matches the addresses in it. ValueError names a bad entry."""
    names: list[str] = []
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        label = entry.removeprefix(".")
        if not label or any(not part or not all(c.isalnum() or c == "-" for c in part) for part in label.split(".")):
            raise ValueError(f"{raw!r} is neither a host name (or .domain), an IP address nor a network such as 10.1.0.0/16")
        names.append(entry)
    return tuple(names), tuple(networks)


@dataclass(frozen=True)
class EgressPolicy:
    """The rule for one deployment. The default refuses every address that is not public."""

    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    names: tuple[str, ...] = field(init=False, repr=False)
    networks: tuple[IPNetwork, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names, networks = parse_allowed(self.allowed_hosts)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "networks", networks)

    def allows_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == name or (name.startswith(".") and (host.endswith(name) or host == name[1:])) for name in self.names)

    def refusal(self, host: str, address: IPAddress) -> EgressRefused | None:
        """None if a call to `address` (reached by the name `host`) may go ahead, else why not and what allows it."""
        kind = kind_of(address)
        if kind is None or any(address.version == network.version and address in network for network in self.networks):
            return None
        if kind == PRIVATE and self.allow_private:
            return None
        remedy = f"add {address} (or its network) to {ALLOWED_HOSTS_SETTING} to allow it"
        if kind == PRIVATE:
            remedy = f"set {ALLOW_PRIVATE_SETTING}=true to allow private networks, or {remedy}"
        return EgressRefused(host, str(address), kind, remedy)

    def check_addresses(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses of `host` a call may connect to; EgressRefused when there are none. A name on the allowed
        list may lead anywhere: the operator vouched for it."""
        found = list(dict.fromkeys(addresses))
        if self.allows_name(host):
            return found
        allowed, first_refusal = [], None
        for text in found:
            refusal = self.refusal(host, parse_address(text))
            if refusal is None:
                allowed.append(text)
            elif first_refusal is None:
                first_refusal = refusal
        if first_refusal is not None and not allowed:
            raise first_refusal
        return allowed

    def check_url(self, url: str) -> None:
        """Resolve the host of `url` and apply the rule (EgressRefused). A name that does not resolve passes: the
        call will fail on its own, and the rule is applied again when it connects."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not host:
            return
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = 80
        try:
            results = system_getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return
        self.check_addresses(host, (result[4][0] for result in results))


# --- every connection a model call opens -------------------------------------------------------------------------

_state = threading.local()
_install_lock = threading.Lock()
_installed = False


def _guarded_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    results = system_getaddrinfo(host, port, family, type, proto, flags)
    policy: EgressPolicy | None = getattr(_state, "policy", None)
    if policy is None or host is None:
        return results
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        allowed = set(policy.check_addresses(name, (result[4][0] for result in results)))
    except EgressRefused as refusal:
        _state.refused = refusal
        raise
    return [result for result in results if result[4][0] in allowed]


def _install() -> None:
    """Route the process's name lookups through the guard (once). Outside `guarded`, lookups pass unchanged;
    `socket.create_connection`, which HTTP clients (httpx, urllib3, aiohttp's resolver) use, looks the function up
    on the socket module at each call."""
    global _installed
    if _installed:  # every call passes here: 32 threads queued on the lock below (py-spy)
        return
    with _install_lock:
        if not _installed:
            socket.getaddrinfo = _guarded_getaddrinfo
            _installed = True


@contextmanager
def guarded(policy: EgressPolicy) -> Iterator[None]:
    """Within the block, on this thread, every name lookup (hence every connection an HTTP client opens) obeys
    `policy`. `refused()` says afterwards whether the rule stopped a connection."""
    _install()
    previous = getattr(_state, "policy", None)
    _state.policy, _state.refused = policy, None
    try:
        yield
    finally:
        _state.policy = previous


def refused() -> EgressRefused | None:
    """What the rule refused in the last `guarded` block on this thread, if anything."""
    return getattr(_state, "refused", None)
