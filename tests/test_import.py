"""`postform import dkim[...]` (issue #15): adopt a DKIM key another provider already
publishes, against a real Knot server; its key sealed at rest; bad key files refused
with the state unchanged."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.conftest import BASE_CONFIG, DNS_CONFIG
from tests.states import read_policy, read_state
from tests.test_dns_live import STATE, dkim_status, push, push_all, verify
from tests.test_dns_zones import quoted
from tests.test_encryption import LOCAL, config, private_key_in

S1 = 'dkim["example.com/s1"]'
S1_LINE = "      - {selector: s1, algorithm: rsa-2048}\n"


def pem(key: object, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())  # type: ignore[attr-defined]


def dkim_record(key: rsa.RSAPrivateKey) -> str:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"


def test_a_key_another_provider_publishes_is_adopted(dns_project: Path, cli, knot) -> None:
    config_file = dns_project / "postform.yaml"
    config_file.write_text(DNS_CONFIG.replace(S1_LINE, ""))  # s1 is not postform's yet
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    push_all(cli, dns_project, knot)
    theirs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    published = dkim_record(theirs)
    knot.update("example.com", add=[("s1._domainkey.example.com", "TXT", quoted(published))])
    config_file.write_text(DNS_CONFIG)  # now declared, as the provider's selector
    before = cli(dns_project, "plan")
    assert f"# {S1} will be created" in before.out and "postform import" not in before.out
    assert verify(cli, dns_project, knot).code == 0  # every applied record is ok
    noted = cli(dns_project, "plan")
    assert f"postform import '{S1}' --private-key-file" in noted.out
    assert "s1._domainkey.example.com already publishes a DKIM key" in noted.out
    assert json.loads(cli(dns_project, "plan", "--json").out)["notes"]

    wrong = dns_project / "wrong.pem"
    wrong.write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    mistaken = cli(dns_project, "import", S1, "--private-key-file", str(wrong))
    assert mistaken.code == 0 and "holds another public key than this private key's" in (
        mistaken.err
    )
    assert cli(dns_project, "state", "rm", S1).code == 0  # undo it: forget that key
    key_file = dns_project / "s1.pem"  # the traditional "BEGIN RSA PRIVATE KEY" form
    key_file.write_bytes(pem(theirs, serialization.PrivateFormat.TraditionalOpenSSL))
    imported = cli(dns_project, "import", S1, "--private-key-file", str(key_file))
    assert imported.code == 0, imported.err
    assert f"Imported {S1} (rsa-2048" in imported.out and "PRIVATE KEY" not in imported.out
    assert stat.S_IMODE((dns_project / STATE).stat().st_mode) == 0o600
    state = read_state(dns_project / STATE)
    stored = state.resources[S1]["computed"]
    assert stored["private_key"] == pem(theirs).decode()  # stored as apply stores keys
    assert published.endswith(stored["public_key"])

    after = cli(dns_project, "plan", "--detailed-exitcode")
    assert after.code == 0 and "No changes." in after.out, after.out
    assert dkim_status(dns_project, "s1") == "NEEDS_ATTENTION"
    checked = verify(cli, dns_project, knot, "--json")
    assert checked.code == 0, checked.out
    rows = {r["name"]: r["status"] for r in json.loads(checked.out)["results"]}
    assert rows["s1._domainkey.example.com"] == "ok"
    assert dkim_status(dns_project, "s1") == "ACTIVE"
    keys = read_policy(dns_project / STATE).domains["example.com"].keys
    assert {k.selector: k.status for k in keys}["s1"] == "ACTIVE"  # the relays sign with it
    again = push(cli, dns_project, knot)
    assert again.code == 0 and again.out.startswith("No changes"), again.out + again.err
    assert knot.txt("s1._domainkey.example.com") == [published]


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POSTFORM_STATE_PASSPHRASE", "correct horse battery staple")
    return "correct horse battery staple"


def test_an_imported_key_is_sealed_at_rest(tmp_path: Path, passphrase: str, cli) -> None:
    from relay.contract.sealing import Sealer, dkim_context

    folder = config(tmp_path, LOCAL)  # BASE_CONFIG: s1 is ed25519
    key = ed25519.Ed25519PrivateKey.generate()
    (folder / "s1.pem").write_bytes(pem(key))
    result = cli(folder, "import", S1, "--private-key-file", "s1.pem")
    assert result.code == 0, result.err
    state_dir = folder / "state"
    for name in ("state.json", "state.json.backup", "state.policy.json"):
        if (state_dir / name).exists():
            assert not private_key_in((state_dir / name).read_bytes()), name
    document = json.loads((state_dir / "state.json").read_text())
    sealed = document["resources"][S1]["computed"]["private_key"]
    opener = Sealer.from_header(document["sealing"], passphrase.encode(), "the state")
    assert opener.open(sealed, dkim_context("example.com", "s1")) == pem(key).decode()
    assert cli(folder, "apply", "--auto-approve").code == 0  # the rest of the config
    plan = cli(folder, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out
    public = read_state(state_dir / "state.json").resources[S1]["computed"]["public_key"]
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public == base64.b64encode(raw).decode()


def test_import_without_the_passphrase_changes_nothing(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTFORM_STATE_PASSPHRASE", raising=False)
    folder = config(tmp_path, LOCAL)
    (folder / "s1.pem").write_bytes(pem(ed25519.Ed25519PrivateKey.generate()))
    result = cli(folder, "import", S1, "--private-key-file", "s1.pem")
    assert result.code == 1 and "POSTFORM_STATE_PASSPHRASE is not set" in result.err
    assert not (folder / "state" / "state.json").exists()


def bad_keys(folder: Path) -> dict[str, tuple[bytes, str]]:
    """file name -> (content, what the error says) for s1, declared ed25519."""
    rsa2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ecdsa = ec.generate_private_key(ec.SECP256R1())
    encrypted = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    return {
        "rsa.pem": (
            pem(rsa2048),
            "holds a 2048-bit RSA key, but the configuration declares algorithm ed25519",
        ),
        "short.pem": (pem(rsa1024), "1024-bit RSA key: DKIM keys must have at least 2048"),
        "ec.pem": (pem(ecdsa), "DKIM keys are RSA (at least 2048 bits) or Ed25519"),
        "garbage.pem": (b"-----BEGIN PRIVATE KEY-----\nnot base64\n", "is not a PEM private key"),
        "public.pem": (
            rsa2048.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "is not a PEM private key",
        ),
        "locked.pem": (encrypted, "is encrypted with a passphrase"),
    }


def test_wrong_or_malformed_key_files_are_clear_errors_and_change_nothing(
    project: Path, cli
) -> None:
    config_file = project / "postform.yaml"
    config_file.write_text(
        BASE_CONFIG.replace(
            "dkim: [{selector: s1, algorithm: ed25519}]",
            ("dkim: [{selector: s1, algorithm: ed25519}, {selector: s2, algorithm: rsa-3072}]"),
        )
    )
    assert cli(project, "apply", "--auto-approve").code == 0
    cli(project, "state", "rm", S1)
    state_file = project / "state" / "state.json"
    before = state_file.read_bytes()
    for name, (content, message) in bad_keys(project).items():
        (project / name).write_bytes(content)
        result = cli(project, "import", S1, "--private-key-file", name)
        assert result.code == 1, name
        assert message in result.err, (name, result.err)
        assert "Traceback" not in result.err
        assert content.splitlines()[1].decode() not in result.err  # never the key itself
        assert state_file.read_bytes() == before, name
    rsa2048 = project / "rsa.pem"
    wrong_size = cli(
        project, "import", 'dkim["example.com/s2"]', "--private-key-file", str(rsa2048)
    )
    assert wrong_size.code == 1
    assert "2048-bit RSA key, but the configuration declares algorithm rsa-3072" in wrong_size.err
    missing = cli(project, "import", S1, "--private-key-file", "nowhere.pem")
    assert missing.code == 1 and "cannot read nowhere.pem" in missing.err
    assert state_file.read_bytes() == before


def test_import_needs_a_declared_selector_not_yet_in_the_state(project: Path, cli) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    key = project / "s1.pem"
    key.write_bytes(pem(ed25519.Ed25519PrivateKey.generate()))
    taken = cli(project, "import", S1, "--private-key-file", str(key))
    assert taken.code == 1 and "is already in the state" in taken.err
    assert f"postform state rm '{S1}'" in taken.err
    undeclared = cli(project, "import", 'dkim["example.com/s9"]', "--private-key-file", str(key))
    assert undeclared.code == 1 and "is not declared in postform.yaml" in undeclared.err
    other = cli(project, "import", 'user["app"]', "--private-key-file", str(key))
    assert other.code == 1 and "adopts DKIM keys" in other.err
    bad = cli(project, "import", "dkim[example.com/s1]", "--private-key-file", str(key))
    assert bad.code == 1 and "is not a resource address" in bad.err
    usage = cli(project, "import", S1)
    assert usage.code == 1 and "--private-key-file" in usage.err
