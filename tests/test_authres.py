"""Agent authentication from Authentication-Results headers (RFC 8601): parsing, trust order and alignment."""

from __future__ import annotations

import email
import email.policy

import pytest

from maild.authres import (
    AuthResults,
    AuthResultsSyntaxError,
    AuthVerdict,
    ResInfo,
    agent_authenticated,
    parse_authentication_results,
)

AGENT = "ana@example.com"
MX = "mx.example.com"
AR = "Authentication-Results"


def ar(value: str) -> tuple[str, str]:
    return (AR, value)


def verdict(*headers: tuple[str, str], agent: str = AGENT, trusted: str = MX) -> AuthVerdict:
    return agent_authenticated([("Received", "from a by b"), *headers, ("From", agent)], agent, trusted)


@pytest.mark.parametrize(
    ("value", "trusted", "reason"),
    [
        pytest.param(f"{MX}; dkim=pass header.d=example.com", True, "dkim=pass header.d=example.com", id="dkim"),
        pytest.param(f"{MX}; dkim=pass header.i=@example.com", True, "dkim=pass header.i=@example.com", id="dkim-i"),
        pytest.param(
            f"{MX}; dkim=pass header.i=ana@example.com", True, "dkim=pass header.i=ana@example.com", id="i-addr"
        ),
        pytest.param(
            f"{MX}; dmarc=pass header.from=example.com", True, "dmarc=pass header.from=example.com", id="dmarc"
        ),
        pytest.param(f"{MX} 1; dkim=pass header.d=example.com", True, "dkim=pass header.d=example.com", id="version"),
        pytest.param(f"{MX}; dkim/1=pass header.d=example.com", True, "dkim=pass header.d=example.com", id="method-v"),
        pytest.param(
            f"{MX.upper()}; DKIM=Pass Header.D=Example.COM", True, "dkim=pass header.d=Example.COM", id="case"
        ),
        pytest.param(f"{MX}; dkim=pass header.d=example.com.", True, "dkim=pass header.d=example.com.", id="root-dot"),
        pytest.param(f'"{MX}"; dkim=pass header.d="example.com"', True, "dkim=pass header.d=example.com", id="quoted"),
        pytest.param(
            f'(by us) {MX} (v) 1 (x); (a) dkim (b) = (c) pass (d; dkim=fail) reason="good (sig); ok" (e) '
            "header (f) . (g) d (h) = (i) example.com (j (nested) \\) k);",
            True,
            "dkim=pass header.d=example.com",
            id="comments-everywhere",
        ),
        pytest.param(
            f"{MX}; spf=pass smtp.mailfrom=ana@example.com; dkim=pass header.d=mailer.net; "
            "dkim=pass header.d=example.com header.s=s1 header.b=Ab+/c=",
            True,
            "dkim=pass header.d=example.com",
            id="second-signature",
        ),
        pytest.param(f"{MX}; dkim=fail header.d=example.com", False, "dkim=fail for example.com", id="fail"),
        pytest.param(f"{MX}; dkim=neutral header.d=example.com", False, "dkim=neutral for example.com", id="neutral"),
        pytest.param(f"{MX}; dkim=temperror header.d=example.com", False, "dkim=temperror for example.com", id="temp"),
        pytest.param(f"{MX}; dmarc=none header.from=example.com", False, "dmarc=none for example.com", id="dmarc-none"),
        pytest.param(f"{MX}; none", False, f"no dkim or dmarc result from {MX}", id="no-result"),
        pytest.param(f"{MX} 1; none", False, f"no dkim or dmarc result from {MX}", id="no-result-v"),
        pytest.param(
            f"{MX}; spf=pass smtp.mailfrom=example.com", False, f"no dkim or dmarc result from {MX}", id="spf"
        ),
        pytest.param(f"{MX}; dkim=pass", False, "dkim=pass without a domain", id="no-domain"),
        pytest.param(
            f"{MX}; dkim=pass header.d=other.org",
            False,
            "dkim=pass for other.org, not example.com",
            id="wrong-domain",
        ),
        pytest.param(
            f"{MX}; dkim=pass header.d=example.com.evil.org; dmarc=pass header.from=evilexample.com",
            False,
            "dkim=pass for example.com.evil.org, not example.com; dmarc=pass for evilexample.com, not example.com",
            id="lookalikes",
        ),
        pytest.param(
            f"{MX}; dkim=pass header.d=mail.example.com",
            False,
            "dkim=pass for mail.example.com, not example.com",
            id="subdomain",
        ),
        pytest.param(
            f"{MX}; dkim=pass header.d=evil.org header.i=@example.com",
            False,
            "dkim=pass for evil.org, not example.com",
            id="d-decides-over-i",
        ),
        pytest.param(
            f"{MX}; dkim=pass header.d=mailer.net; dkim=fail header.d=example.com; dmarc=fail header.from=example.com",
            False,
            "dkim=pass for mailer.net, not example.com; dkim=fail for example.com; dmarc=fail for example.com",
            id="relevant-fails",
        ),
        pytest.param(
            f"{MX}; dkim=pass header.d=example.com; dmarc=fail header.from=example.com",
            False,
            "dmarc=fail for example.com",
            id="dmarc-fail-vetoes",
        ),
    ],
)
def test_trusted_header_verdicts(value: str, trusted: bool, reason: str) -> None:
    """The trusted header's dkim and dmarc results decide, by exact domain match, with a precise reason."""
    assert verdict(ar(value)) == AuthVerdict(trusted, reason)


PASS = f"{MX}; dkim=pass header.d=example.com"
FAIL = f"{MX}; dkim=fail header.d=example.com"


@pytest.mark.parametrize(
    ("headers", "trusted", "reason"),
    [
        pytest.param([], False, f"no Authentication-Results from {MX}", id="missing"),
        pytest.param(
            [ar("mx.evil.org; dkim=pass header.d=example.com")],
            False,
            f"no Authentication-Results from {MX}",
            id="other-authserv-only",
        ),
        pytest.param([ar(FAIL), ar(PASS)], False, "dkim=fail for example.com", id="forged-below"),
        pytest.param(
            [ar("mx.evil.org; dkim=pass header.d=example.com"), ar(FAIL)],
            False,
            "dkim=fail for example.com",
            id="forged-above-other-id",
        ),
        pytest.param(
            [ar(f"{MX}.evil.org; dkim=pass header.d=example.com"), ar(f"x{MX}; dmarc=pass header.from=example.com")],
            False,
            f"no Authentication-Results from {MX}",
            id="lookalike-authserv",
        ),
        pytest.param([ar(PASS), ar(FAIL)], True, "dkim=pass header.d=example.com", id="two-trusted-top-pass"),
        pytest.param([("authentication-RESULTS", PASS)], True, "dkim=pass header.d=example.com", id="name-case"),
        pytest.param(
            [("ARC-Authentication-Results", f"i=1; {PASS}"), ("X-Authentication-Results", PASS)],
            False,
            f"no Authentication-Results from {MX}",
            id="other-header-names",
        ),
        pytest.param(
            [ar(f"{MX}; dkim=pass header.d=example.com (unclosed"), ar(PASS)],
            False,
            f"unreadable Authentication-Results from {MX}: expected ')' closing a comment at end",
            id="unreadable-no-fallthrough",
        ),
        pytest.param(
            [ar(f"{MX}; dkim=pass header.d=example.com action=none"), ar(PASS)],
            False,
            f"unreadable Authentication-Results from {MX}: expected '.' at '=none'",
            id="malformed-no-fallthrough",
        ),
    ],
)
def test_header_order(headers: list[tuple[str, str]], trusted: bool, reason: str) -> None:
    """Only the topmost header from the trusted authserv-id counts; others and those below it are ignored."""
    assert verdict(*headers) == AuthVerdict(trusted, reason)


OPENDKIM = f"{MX}; dkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com"
OPENDMARC_NONE = f"{MX}; dmarc=none (p=none dis=none) header.from=example.com"


@pytest.mark.parametrize(
    ("headers", "topmost", "every"),
    [
        pytest.param(
            [ar(OPENDMARC_NONE), ar(OPENDKIM)],
            AuthVerdict(False, "dmarc=none for example.com"),
            AuthVerdict(True, "dkim=pass header.d=example.com"),
            id="opendmarc-none-above-opendkim-pass",
        ),
        pytest.param(
            [ar(f"{MX}; dmarc=fail (p=reject) header.from=example.com"), ar(PASS)],
            AuthVerdict(False, "dmarc=fail for example.com"),
            AuthVerdict(False, "dmarc=fail for example.com"),
            id="dmarc-fail-still-refuses",
        ),
        pytest.param(
            [ar(OPENDMARC_NONE), ar("mx.evil.org; dkim=pass header.d=example.com")],
            AuthVerdict(False, "dmarc=none for example.com"),
            AuthVerdict(False, "dmarc=none for example.com"),
            id="other-authserv-still-ignored",
        ),
        pytest.param(
            [ar(OPENDMARC_NONE), ar(f"{MX}; dkim=pass header.d=example.com (unclosed")],
            AuthVerdict(False, "dmarc=none for example.com"),
            AuthVerdict(False, f"unreadable Authentication-Results from {MX}: expected ')' closing a comment at end"),
            id="unreadable-lower-refuses",
        ),
        pytest.param(
            [ar(f"{MX}; dkim=pass header.d=mailer.example.net"), ar(f"{MX}; spf=pass smtp.mailfrom=example.com")],
            AuthVerdict(False, "dkim=pass for mailer.example.net, not example.com"),
            AuthVerdict(False, "dkim=pass for mailer.example.net, not example.com"),
            id="no-aligned-pass-in-any",
        ),
    ],
)
def test_every_trusted_header(headers: list[tuple[str, str]], topmost: AuthVerdict, every: AuthVerdict) -> None:
    """authres_headers = "all" reads every header of the trusted authserv-id as one; "topmost" the first alone."""
    framed = [("Received", "from a by b"), *headers, ("From", AGENT)]
    assert agent_authenticated(framed, AGENT, MX) == topmost
    assert agent_authenticated(framed, AGENT, MX, every_trusted_header=True) == every


def test_trusted_id_and_agent_case_insensitive() -> None:
    """The configured authserv-id and the agent's address match whatever their case."""
    assert verdict(ar(PASS), agent="Ana@EXAMPLE.com", trusted="MX.Example.COM ").trusted


def test_idn_agent_domain_matches_a_label() -> None:
    """An agent's Unicode domain matches the A-label a verifier writes."""
    assert verdict(ar(f"{MX}; dkim=pass header.d=xn--bcher-kva.example"), agent="ana@bücher.example").trusted


@pytest.mark.parametrize(("agent", "trusted_id"), [("ana", MX), ("ana@", MX), (AGENT, " ")])
def test_unusable_configuration_is_never_trusted(agent: str, trusted_id: str) -> None:
    """An agent address without a domain or an empty trusted authserv-id trusts nothing."""
    assert not verdict(ar(PASS), agent=agent, trusted=trusted_id).trusted


GMAIL = b"""\
Delivered-To: support@example.org\r
Received: by 2002:a05:6a10:1234 with SMTP id abc;\r
        Mon, 23 Nov 2026 02:00:00 -0800 (PST)\r
ARC-Authentication-Results: i=1; mx.google.com;\r
       dkim=pass header.i=@example.com header.s=20230601 header.b=Xq9bTnQk\r
Authentication-Results: mx.google.com;\r
       dkim=pass header.i=@example.com header.s=20230601 header.b=Xq9bTnQk;\r
       spf=pass (google.com: domain of ana@example.com designates 209.85.220.41 as permitted sender)\r
 smtp.mailfrom=ana@example.com;\r
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com\r
Authentication-Results: mx.google.com; dkim=fail header.i=@example.com\r
From: Ana <ana@example.com>\r
Subject: Re: [ACME#12] printer\r
\r
body\r
"""

POSTFIX = b"""\
Authentication-Results: mx.example.com; dmarc=pass (p=reject dis=none)\r
\theader.from=example.com\r
Authentication-Results: mx.example.com;\r
\tdkim=pass (2048-bit key; unprotected) header.d=example.com\r
\theader.i=@example.com header.a=rsa-sha256 header.s=mail header.b="AbCd1234"\r
Received: from mail.example.com (mail.example.com [192.0.2.1])\r
\tby mx.example.com (Postfix) with ESMTPS id 4Xyz for <support@example.org>\r
From: ana@example.com\r
\r
body\r
"""

RSPAMD = b"""\
Authentication-Results: mx.example.com;\r
\tdkim=pass header.d=example.com header.s=dkim header.b=Ab12Cd34;\r
\tspf=pass (mx.example.com: domain of "ana@example.com" designates 192.0.2.1 as permitted sender)\r
 smtp.mailfrom=ana@example.com;\r
\tdmarc=pass (policy=reject) header.from=example.com\r
From: ana@example.com\r
\r
body\r
"""

EXIM = b"""\
Authentication-Results: mx.example.com;\r
\tiprev=pass (mail.example.com) smtp.remote-ip=192.0.2.1;\r
\tspf=softfail smtp.mailfrom=example.com;\r
\tdkim=fail (signature body hash mismatch) header.d=example.com header.s=sel header.a=rsa-sha256;\r
\tdmarc=fail header.from=example.com;\r
\tarc=none\r
From: ana@example.com\r
\r
body\r
"""

MICROSOFT = b"""\
Authentication-Results: spf=pass (sender IP is 40.107.1.2)\r
 smtp.mailfrom=example.com; dkim=pass (signature was verified)\r
 header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass\r
 reason=100\r
From: ana@example.com\r
\r
body\r
"""


@pytest.mark.parametrize(
    ("raw", "trusted_id", "expected"),
    [
        pytest.param(GMAIL, "mx.google.com", AuthVerdict(True, "dkim=pass header.i=@example.com"), id="gmail"),
        pytest.param(POSTFIX, MX, AuthVerdict(True, "dmarc=pass header.from=example.com"), id="opendkim-opendmarc"),
        pytest.param(RSPAMD, MX, AuthVerdict(True, "dkim=pass header.d=example.com"), id="rspamd"),
        pytest.param(
            EXIM, MX, AuthVerdict(False, "dkim=fail for example.com; dmarc=fail for example.com"), id="exim-fail"
        ),
        pytest.param(MICROSOFT, MX, AuthVerdict(False, f"no Authentication-Results from {MX}"), id="microsoft"),
    ],
)
def test_real_world_messages(raw: bytes, trusted_id: str, expected: AuthVerdict) -> None:
    """Folded headers as Gmail, Postfix milters, Rspamd, Exim and Microsoft write them give the right verdict."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert agent_authenticated(message.items(), AGENT, trusted_id) == expected


def test_parse_structure() -> None:
    """A header parses into its authserv-id, version and results with lower-case names and unquoted values."""
    parsed = parse_authentication_results(
        'MX.example.com 1; DKIM=Pass reason="good sig" header.D=Example.com header.I="a b"@example.com;\r\n'
        " spf=none (no record) smtp.mailfrom=@example.com; auth=pass smtp.auth=ana"
    )
    assert parsed == AuthResults(
        "MX.example.com",
        1,
        (
            ResInfo("dkim", "pass", "good sig", (("header.d", "Example.com"), ("header.i", "a b@example.com"))),
            ResInfo("spf", "none", None, (("smtp.mailfrom", "@example.com"),)),
            ResInfo("auth", "pass", None, (("smtp.auth", "ana"),)),
        ),
    )
    assert parsed.results[0].get("header.i") == "a b@example.com"
    assert parsed.results[0].get("header.s") is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "; dkim=pass",
        f"{MX} dkim=pass",
        f"{MX}; dkim pass",
        f"{MX}; dkim=",
        f"{MX}; dkim=pass header.d",
        f'{MX}; dkim=pass header.d="example.com',
        f"{MX}; dkim=pass (open",
        f"{MX}; none; dkim=pass header.d=example.com",
        f"{MX}; dkim=pass; none",
        "spf=pass (sender IP is 40.107.1.2) smtp.mailfrom=example.com",
    ],
)
def test_parse_rejects_malformed(value: str) -> None:
    """Headers that break RFC 8601 raise AuthResultsSyntaxError rather than yield a guess."""
    with pytest.raises(AuthResultsSyntaxError):
        parse_authentication_results(value)
