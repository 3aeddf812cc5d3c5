"""relay.dkimsign: signatures verified by dkimpy and by Perl's Mail::DKIM (independent)."""

from __future__ import annotations

import base64
import functools
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.keys import generate_dkim_key
from relay import dkimsign
from relay.dkimsign import SIGNED_HEADERS, DkimSigner

DOMAIN = "example.com"
SELECTOR = "s1"
DNS_NAME = f"{SELECTOR}._domainkey.{DOMAIN}."
VERIFY_PL = Path(__file__).resolve().parent / "dkim_verify.pl"
EMPTY_BODY_HASH = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # base64(sha256(b""))

BASE = (
    b"From: Billing <billing@example.com>\r\n"
    b"To: Alice <alice@example.org>\r\n"
    b"Subject: Your invoice\r\n"
    b"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Alice,\r\n"
    b"\r\n"
    b"your invoice is attached.\r\n"
)

MESSAGES: dict[str, bytes] = {
    "plain": BASE,
    "folded headers": BASE.replace(
        b"Subject: Your invoice\r\n", b"Subject: Your invoice\r\n\tfor November\r\n  and more\r\n"
    ).replace(b"To: Alice <alice@example.org>\r\n", b"To:\r\n Alice <alice@example.org>\r\n"),
    "repeated headers": BASE.replace(
        b"To: Alice <alice@example.org>\r\n",
        b"To: Alice <alice@example.org>\r\nCc: Carol <carol@example.org>\r\n"
        b"To: Bob <bob@example.org>\r\n",
    ),
    "whitespace": BASE.replace(b"Subject: Your invoice", b"Subject:\t Your \t  invoice  \t")
    .replace(b"Date: ", b"Date:\t\t")
    .replace(b"Hello Alice,", b"Hello \t  Alice,  \t")
    .replace(b"attached.", b"\t attached. "),
    "empty body": BASE.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n",
    "body without final CRLF": BASE.removesuffix(b"\r\n"),
    "trailing empty lines": BASE + b"\r\n\r\n \r\n\t\r\n",
    "8-bit utf-8 body": BASE.replace(b"your invoice", "votre facture, 請求書 — Grüße".encode()),
    "list headers": BASE.replace(
        b"MIME-Version: 1.0\r\n",
        b"MIME-Version: 1.0\r\nList-Unsubscribe: <https://example.com/u/1>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        b"Reply-To: support@example.com\r\nX-Not-Signed: yes\r\n",
    ),
}


@functools.cache
def keypair(algorithm: str) -> tuple[str, str]:
    """(private PEM, DNS TXT value), generated once per algorithm for the whole module."""
    private, public = generate_dkim_key(algorithm)
    kind = "ed25519" if algorithm == "ed25519" else "rsa"
    return private, f"v=DKIM1; k={kind}; p={public}"


def signer_for(algorithm: str) -> DkimSigner:
    return DkimSigner(DOMAIN, SELECTOR, algorithm, keypair(algorithm)[0])


def signed(algorithm: str, message: bytes, timestamp: int | None = None) -> bytes:
    return signer_for(algorithm).sign(message, timestamp) + message


def dkimpy_verifies(algorithm: str, message: bytes) -> bool:
    txt = keypair(algorithm)[1].encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == DNS_NAME.encode()
        return txt

    return dkim.verify(message, dnsfunc=dnsfunc)


def tags(field: bytes) -> dict[str, str]:
    """The DKIM-Signature tags, in order, with folding whitespace removed."""
    name, _, value = field.decode().partition(":")
    assert name == "DKIM-Signature"
    pairs = [t.split("=", 1) for t in value.split(";")]
    return {k.strip(): re.sub(r"\s+", "", v) for k, v in pairs}


# --- dkimpy --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["rsa-2048", "ed25519"])
@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_dkimpy_verifies(algorithm: str, case: str) -> None:
    assert dkimpy_verifies(algorithm, signed(algorithm, MESSAGES[case]))


def test_dkimpy_verifies_rsa_4096() -> None:
    assert dkimpy_verifies("rsa-4096", signed("rsa-4096", MESSAGES["repeated headers"]))


@pytest.mark.parametrize("algorithm", ["rsa-2048", "ed25519"])
@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("body changed", lambda m: m.replace(b"attached", b"overdue")),
        ("body line added", lambda m: m + b"PS: pay now\r\n"),
        ("subject changed", lambda m: m.replace(b"Your invoice", b"Your refund")),
        ("from added on top", lambda m: b"From: evil@example.net\r\n" + m),
        (
            "from added below",
            lambda m: m.replace(b"\r\n\r\n", b"\r\nFrom: evil@example.net\r\n\r\n", 1),
        ),
        ("to removed", lambda m: m.replace(b"To: Alice <alice@example.org>\r\n", b"")),
    ],
)
def test_tampering_fails(algorithm: str, what: str, change) -> None:
    base = signed(algorithm, BASE)
    assert dkimpy_verifies(algorithm, base)
    tampered = change(base)
    assert tampered != base, what
    assert not dkimpy_verifies(algorithm, tampered), what


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m + b"\r\n\r\n",  # more trailing empty lines
        lambda m: m.replace(b"Hello Alice,", b"Hello   Alice,\t "),  # whitespace in a line
        lambda m: m.replace(b"Subject: Your invoice", b"SUBJECT:  Your\r\n invoice"),  # refold
        lambda m: m.replace(b"\r\n\r\n", b"\r\nX-Added: later\r\n\r\n", 1),  # unsigned header
    ],
)
def test_relaxed_changes_still_verify(change) -> None:
    """What relaxed canonicalization forgives (RFC 6376 3.4.2, 3.4.4) still verifies."""
    assert dkimpy_verifies("ed25519", change(signed("ed25519", BASE)))


# --- the field itself ----------------------------------------------------------------


def test_tag_list() -> None:
    field = signer_for("rsa-2048").sign(MESSAGES["repeated headers"], timestamp=1_700_000_000)
    assert field.startswith(b"DKIM-Signature: v=1; ")
    assert field.endswith(b"\r\n") and not field.endswith(b"\r\n\r\n")
    parsed = tags(field)
    assert list(parsed) == ["v", "a", "c", "d", "s", "t", "h", "bh", "b"]
    assert parsed["a"] == "rsa-sha256"
    assert parsed["c"] == "relaxed/relaxed"
    assert (parsed["d"], parsed["s"], parsed["t"]) == (DOMAIN, SELECTOR, "1700000000")
    names = parsed["h"].split(":")
    assert names.count("from") == 2  # one From in the message, signed once more
    assert names.count("to") == 2 and names.count("cc") == 1
    assert names == [
        "from",
        "from",
        "to",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
    ]
    assert len(base64.b64decode(parsed["b"], validate=True)) == 256  # RSA-2048


def test_ed25519_tags_and_determinism() -> None:
    signer = signer_for("ed25519")
    field = signer.sign(BASE, timestamp=1_700_000_000)
    parsed = tags(field)
    assert parsed["a"] == "ed25519-sha256"
    assert len(base64.b64decode(parsed["b"], validate=True)) == 64
    assert signer.sign(BASE, timestamp=1_700_000_000) == field  # Ed25519 is deterministic


def test_timestamp_defaults_to_now() -> None:
    before = int(time.time())
    parsed = tags(signer_for("ed25519").sign(BASE))
    assert before <= int(parsed["t"]) <= int(time.time())


@pytest.mark.parametrize("algorithm", ["rsa-2048", "rsa-4096", "ed25519"])
def test_folded_lines_are_short(algorithm: str) -> None:
    field = signer_for(algorithm).sign(MESSAGES["list headers"])
    lines = field.removesuffix(b"\r\n").split(b"\r\n")
    assert len(lines) > 1
    assert all(len(line) <= 78 for line in lines)
    assert all(line[:1] == b"\t" for line in lines[1:])
    assert b"\n" not in field.replace(b"\r\n", b"")


def test_every_signed_name_is_listed_once_per_instance() -> None:
    message = b"".join(f"{name}: v\r\n".encode() for name in SIGNED_HEADERS) * 2 + b"\r\nx\r\n"
    names = tags(signer_for("ed25519").sign(message))["h"].split(":")
    expected = [n for name in SIGNED_HEADERS for n in [name] * (3 if name == "from" else 2)]
    assert names == expected


def test_body_hash() -> None:
    """bh= for relaxed bodies; the first value is RFC 8463 appendix A's example body."""
    rfc8463 = b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n"
    assert dkimsign._body_hash(rfc8463) == "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
    for empty in (b"", b"\r\n", b"\r\n\r\n", b" \t \r\n\t\r\n", b"  "):
        assert dkimsign._body_hash(empty) == EMPTY_BODY_HASH
    assert dkimsign._relaxed_body(b"a  b\t \r\nc") == b"a b\r\nc\r\n"
    assert dkimsign._relaxed_body(b"a\r\r\n\r\n") == b"a\r\r\n"


def test_relaxed_header() -> None:
    raw = b"SubJect \t:  Hello \r\n\t  world\t "
    assert dkimsign._relaxed_field(raw) == b"subject:Hello world"


TOKENS = st.sampled_from([b"a", b"b", b" ", b"  ", b"\t", b"\r\n", b"\r", "é".encode()])


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS, max_size=30))
def test_relaxed_body_matches_dkimpy(tokens: list[bytes]) -> None:
    # Bodies as SMTP delivers them: ending in CRLF (DATA always ends a line). Without it,
    # dkimpy keeps the last line's trailing WSP while RFC 6376 3.4.4 (and we) drop it.
    body = b"".join(tokens)
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    assert dkimsign._relaxed_body(body) == Relaxed.canonicalize_body(body)


FOLDS = st.sampled_from([b"\r\n ", b"\r\n\t", b"\r\n \t "])


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS.filter(lambda t: not t.startswith(b"\r")) | FOLDS, max_size=20))
def test_relaxed_header_matches_dkimpy(tokens: list[bytes]) -> None:
    # No lone CR: RFC 5322 forbids it in a field, and dkimpy's bytes.strip() would drop
    # one at the end of a value where RFC 6376 3.4.2 (and we) strip only WSP.
    value = b"".join(tokens) + b"end"
    ((name, canonical),) = Relaxed.canonicalize_headers([(b"X-Test", value)])
    expected = name + b":" + canonical.removesuffix(b"\r\n")
    assert dkimsign._relaxed_field(b"X-Test:" + value) == expected


def test_no_header_block_and_bare_lf_do_not_crash() -> None:
    signer = signer_for("ed25519")
    assert tags(signer.sign(b"\r\nbody only\r\n"))["h"] == "from"
    assert tags(signer.sign(b"From: a@example.com\r\n"))["bh"] == EMPTY_BODY_HASH
    lf = BASE.replace(b"\r\n", b"\n")
    assert dkimpy_verifies("ed25519", signer.sign(lf) + lf)  # dkimpy reads LF as CRLF too


# --- the key -------------------------------------------------------------------------


def test_key_is_loaded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = signer_for("rsa-2048")
    assert isinstance(signer.key, rsa.RSAPrivateKey)
    assert isinstance(signer_for("ed25519").key, ed25519.Ed25519PrivateKey)

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the key was loaded again")

    monkeypatch.setattr(dkimsign.serialization, "load_pem_private_key", no_loading)
    assert dkimpy_verifies("rsa-2048", signer.sign(BASE) + BASE)


@pytest.mark.parametrize(
    ("algorithm", "key_of"),
    [("rsa-2048", "ed25519"), ("ed25519", "rsa-2048"), ("rsa-3072", "rsa-2048")],
)
def test_key_must_match_algorithm(algorithm: str, key_of: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        DkimSigner(DOMAIN, SELECTOR, algorithm, keypair(key_of)[0])


@pytest.mark.parametrize(
    ("domain", "selector", "algorithm"),
    [
        ("example.com", "s1", "rsa-1024"),
        ("example.com; x=1", "s1", "ed25519"),
        ("example.com", "s 1", "ed25519"),
        ("", "s1", "ed25519"),
    ],
)
def test_bad_arguments(domain: str, selector: str, algorithm: str) -> None:
    with pytest.raises(ValueError):
        DkimSigner(domain, selector, algorithm, keypair("ed25519")[0])


# --- Perl Mail::DKIM, an independent verifier ----------------------------------------


@functools.cache
def _mail_dkim_problem() -> str | None:
    """None when perl with Mail::DKIM and Net::DNS is usable, else what is missing."""
    if shutil.which("perl") is None:
        return "perl is not installed"
    probe = subprocess.run(
        ["perl", "-MMail::DKIM::Verifier", "-MNet::DNS", "-e", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return "Perl Mail::DKIM is not installed (Debian: libmail-dkim-perl)"
    return None


def require_mail_dkim() -> None:
    """Skip without perl/Mail::DKIM, except in CI (CI set), where they must be there."""
    problem = _mail_dkim_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{problem}: CI must install libmail-dkim-perl")
    pytest.skip(problem)


def mail_dkim(algorithm: str, message: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    require_mail_dkim()
    path = tmp_path / "message.eml"
    path.write_bytes(message)
    return subprocess.run(
        ["perl", str(VERIFY_PL), str(path), DNS_NAME, keypair(algorithm)[1]],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_mail_dkim_verifies_rsa(case: str, tmp_path: Path) -> None:
    result = mail_dkim("rsa-2048", signed("rsa-2048", MESSAGES[case]), tmp_path)
    assert (result.returncode, result.stdout) == (0, "pass\n"), result.stderr


def test_mail_dkim_rejects_tampering(tmp_path: Path) -> None:
    message = signed("rsa-2048", BASE)
    for tampered in (
        message.replace(b"attached", b"overdue"),
        message.replace(b"Your invoice", b"Your refund"),
        b"From: evil@example.net\r\n" + message,
    ):
        result = mail_dkim("rsa-2048", tampered, tmp_path)
        assert result.returncode == 1, result.stdout
        assert result.stdout.startswith("fail"), result.stdout


def test_mail_dkim_ed25519(tmp_path: Path) -> None:
    # Mail::DKIM 1.20230212 (Debian 12's libmail-dkim-perl) has no ed25519-sha256
    # (RFC 8463): it answers "invalid (unsupported algorithm ed25519-sha256)". With it,
    # Ed25519 is verified by dkimpy alone (tests above); this test checks Mail::DKIM
    # as soon as the installed version knows the algorithm.
    result = mail_dkim("ed25519", signed("ed25519", MESSAGES["whitespace"]), tmp_path)
    if "unsupported algorithm" in result.stdout or "unsupported key type" in result.stdout:
        pytest.skip(f"installed Mail::DKIM has no ed25519-sha256: {result.stdout.strip()}")
    assert (result.returncode, result.stdout) == (0, "pass\n"), result.stderr
