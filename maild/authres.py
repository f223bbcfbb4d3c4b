"""Whether a mail in an agent's name is authenticated, read from our MTA's Authentication-Results (RFC 8601).

Only the topmost Authentication-Results header carrying the trusted authserv-id counts: headers from other
authserv-ids can be written by anyone, and those below it could have been added by the sender before the mail
reached our MTA. That header must say ``dkim=pass`` for the agent's domain, or ``dmarc=pass`` for it.

An MTA whose verifiers each write their own header (OpenDKIM's ``dkim=``, then OpenDMARC's ``dmarc=`` on top)
and which removes every such header arriving from outside can have all of them read as one
(``[security] authres_headers = "all"``): then a DMARC ``none`` on top no longer hides the DKIM pass below it.
Without that removal a sender could plant a pass below ours, hence it is not the default.

Alignment: the domain must match the agent's domain exactly (case-insensitively, A-labels for IDNs). A
signature by a subdomain is refused because subdomains are often delegated to third parties (mailing
services, hosted sites), and one by a parent domain because, without the Public Suffix List, ``example.com``
cannot be told from ``co.uk``. Relaxed alignment (RFC 7489) is still honoured where it is computed properly:
by the MTA's DMARC verifier, whose ``dmarc=pass header.from=<agent's domain>`` is accepted.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

# RFC 2045 token: no spaces, controls or tspecials; a dot is allowed, so "mx.example.com" is one token.
_TOKEN = re.compile(r'[^\x00-\x20\x7f()<>@,;:\\"/\[\]?=]+')
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_DIGITS = re.compile(r"[0-9]+")
# A property's value is a token, an address or a domain; signatures (header.b) add "/", "+" and "=".
_PVALUE = re.compile(r'[^\s;()"]+')
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class AuthVerdict:
    """Whether the mail is the agent's, and one line saying why (for logs and the admins' warning mail)."""

    trusted: bool
    reason: str


@dataclass(frozen=True)
class ResInfo:
    """One method's result: ``dkim=pass header.d=example.com``; names lower case, values as written."""

    method: str
    result: str
    reason: str | None
    properties: tuple[tuple[str, str], ...]  # ("header.d", "example.com"), in order

    def get(self, name: str) -> str | None:
        """The first value of a property such as ``header.d``."""
        return next((value for key, value in self.properties if key == name), None)


@dataclass(frozen=True)
class AuthResults:
    """One parsed Authentication-Results header."""

    authserv_id: str
    version: int | None
    results: tuple[ResInfo, ...]


class AuthResultsSyntaxError(ValueError):
    """The header does not follow RFC 8601."""


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = _LINE_BREAK.sub("", text)  # unfold
        self.pos = 0

    def fail(self, expected: str) -> AuthResultsSyntaxError:
        rest = self.text[self.pos : self.pos + 20]
        return AuthResultsSyntaxError(f"expected {expected} at {rest!r}" if rest else f"expected {expected} at end")

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip_cfws(self) -> None:
        """Skip white space and comments, which may nest and hold quoted pairs (and so ";" or "=")."""
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and depth:
                self.pos += 1
            elif char == "(":
                depth += 1
            elif char == ")" and depth:
                depth -= 1
            elif not depth and not char.isspace():
                return
            self.pos += 1
        if depth:
            raise self.fail("')' closing a comment")

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(repr(char))
        self.pos += 1
        self.skip_cfws()

    def match(self, pattern: re.Pattern[str], expected: str) -> str:
        found = pattern.match(self.text, self.pos)
        if found is None:
            raise self.fail(expected)
        self.pos = found.end()
        self.skip_cfws()
        return found.group()

    def quoted_string(self) -> str:
        chars: list[str] = []
        self.pos += 1
        while self.pos < len(self.text) and self.text[self.pos] != '"':
            if self.text[self.pos] == "\\":
                self.pos += 1
            chars.append(self.text[self.pos : self.pos + 1])
            self.pos += 1
        if self.pos >= len(self.text):
            raise self.fail("'\"' closing a quoted string")
        self.pos += 1
        return "".join(chars)

    def value(self) -> str:
        if self.peek() == '"':
            text = self.quoted_string()
            self.skip_cfws()
            return text
        return self.match(_TOKEN, "a token or quoted string")

    def pvalue(self) -> str:
        text = self.quoted_string() if self.peek() == '"' else ""
        if not text or self.peek() == "@":  # a quoted local part goes on with "@domain"
            found = _PVALUE.match(self.text, self.pos)
            if found is not None:
                text += found.group()
                self.pos = found.end()
        self.skip_cfws()
        return text


def authserv_id_of(value: str) -> str | None:
    """The authserv-id a header claims, or None if it has none that can be read."""
    scanner = _Scanner(value)
    try:
        scanner.skip_cfws()
        return scanner.value()
    except AuthResultsSyntaxError:
        return None


def parse_authentication_results(value: str) -> AuthResults:
    """Parse one header value; raise AuthResultsSyntaxError if it does not follow RFC 8601."""
    scan = _Scanner(value)
    scan.skip_cfws()
    authserv_id = scan.value()
    version = int(scan.match(_DIGITS, "")) if _DIGITS.match(scan.text, scan.pos) else None
    results: list[ResInfo] = []
    while scan.peek() == ";":
        scan.expect(";")
        if not scan.peek():
            break  # a trailing ";" is harmless
        method = scan.match(_KEYWORD, "a method").lower()
        if method == "none" and not results and scan.peek() != "=":
            break  # "no-result": the server checked nothing; nothing may follow
        if scan.peek() == "/":
            scan.expect("/")
            scan.match(_KEYWORD, "a method version")
        scan.expect("=")
        result = scan.match(_KEYWORD, "a result").lower()
        reason: str | None = None
        properties: list[tuple[str, str]] = []
        while scan.peek() not in ("", ";"):
            ptype = scan.match(_KEYWORD, "a property or reason").lower()
            if ptype == "reason" and scan.peek() == "=":
                scan.expect("=")
                reason = scan.value()
                continue
            scan.expect(".")
            name = scan.match(_KEYWORD, "a property name").lower()
            scan.expect("=")
            properties.append((f"{ptype}.{name}", scan.pvalue()))
        results.append(ResInfo(method, result, reason, tuple(properties)))
    if scan.peek():
        raise scan.fail("';'")
    return AuthResults(authserv_id, version, tuple(results))


def _domain(text: str) -> str:
    """A comparable domain: the part after any "@", lower case, no trailing dot, A-labels."""
    domain = text.rpartition("@")[2].strip().rstrip(".").lower()
    if not domain.isascii():
        # A domain that IDNA refuses stays as it is: it then matches nothing a verifier wrote.
        with contextlib.suppress(UnicodeError):
            domain = domain.encode("idna").decode("ascii")
    return domain


def _subject(info: ResInfo) -> tuple[str, str] | None:
    """The property naming the domain a dkim or dmarc result is about, and its value."""
    # Gmail writes only header.i; when header.d is present it is the signing domain and decides.
    names = {"dkim": ("header.d", "header.i"), "dmarc": ("header.from",)}.get(info.method, ())
    return next(((name, value) for name in names if (value := info.get(name))), None)


def judge(results: AuthResults, agent_domain: str) -> AuthVerdict:
    """The verdict of one trusted header for an agent's domain (already normalised by `_domain`)."""
    passes: list[str] = []
    findings: list[str] = []
    dmarc_failed = False
    for info in results.results:
        if info.method not in ("dkim", "dmarc"):
            continue
        subject = _subject(info)
        if subject is None:
            findings.append(f"{info.method}={info.result} without a domain")
            continue
        domain = _domain(subject[1])
        if domain != agent_domain:
            findings.append(f"{info.method}={info.result} for {domain}, not {agent_domain}")
        elif info.result == "pass":
            passes.append(f"{info.method}=pass {subject[0]}={subject[1]}")
        else:
            findings.append(f"{info.method}={info.result} for {domain}")
            # DMARC already weighs every signature; its explicit fail overrides a pass seen here.
            dmarc_failed = dmarc_failed or (info.method, info.result) == ("dmarc", "fail")
    if passes and not dmarc_failed:
        return AuthVerdict(True, passes[0])
    if findings:
        return AuthVerdict(False, "; ".join(findings))
    return AuthVerdict(False, f"no dkim or dmarc result from {results.authserv_id}")


def agent_authenticated(
    raw_headers: list[tuple[str, str]],
    agent_address: str,
    trusted_authserv_id: str,
    *,
    every_trusted_header: bool = False,
) -> AuthVerdict:
    """Whether our MTA vouches, by DKIM or DMARC, that a mail comes from the agent's domain.

    `raw_headers` are the (name, value) pairs in order as received, topmost first; values may be folded.
    With `every_trusted_header`, all headers of the trusted authserv-id are judged together (a ``dmarc=fail``
    in any still overrides a pass in another); else the topmost alone.
    """
    agent_domain = _domain(agent_address) if "@" in agent_address else ""
    if not agent_domain:
        return AuthVerdict(False, f"agent address {agent_address!r} has no domain")
    trusted_id = trusted_authserv_id.strip().lower()
    if not trusted_id:
        return AuthVerdict(False, "no trusted_authserv_id configured")
    found: list[AuthResults] = []
    for name, value in raw_headers:
        if name.strip().lower() != "authentication-results":
            continue
        text = str(value)  # compat32 returns a Header object for undecodable bytes
        if (authserv_id_of(text) or "").lower() != trusted_id:
            continue
        try:
            found.append(parse_authentication_results(text))
        except AuthResultsSyntaxError as error:
            # Never fall through to a lower header: the sender could have written that one.
            return AuthVerdict(False, f"unreadable Authentication-Results from {trusted_authserv_id}: {error}")
        if not every_trusted_header:
            break
    if not found:
        return AuthVerdict(False, f"no Authentication-Results from {trusted_authserv_id}")
    results = tuple(info for header in found for info in header.results)
    return judge(AuthResults(found[0].authserv_id, found[0].version, results), agent_domain)
