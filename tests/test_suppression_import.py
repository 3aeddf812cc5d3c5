"""`postform import suppressions FILE` (issue #15): suppression lists exported from AWS
SES and OCI Email Delivery go to the relay's runtime list; a bad row is reported by its
line and nothing is imported; importing again adds nothing; the relay refuses them."""

from __future__ import annotations

import json
from pathlib import Path

from relay import replies as R
from relay.store.sqlite import EmbeddedStore
from tests.relayproc import RelayProcess
from tests.test_relay_smtp import reply_text

DATA = Path("state") / "relay"

SES = """\
EmailAddress,Reason,LastUpdateTime
gone@example.org,BOUNCE,2024-03-01T10:15:00.123000+00:00
Angry@Example.ORG,COMPLAINT,1709288100
"""

OCI = """\
id,compartmentId,emailAddress,reason,timeCreated,timeLastSuppressed
ocid1.emailsuppression.oc1..a,ocid1.tenancy.oc1..t,hard@example.net,HARDBOUNCE,2024-02-01T09:00Z,
ocid1.emailsuppression.oc1..b,ocid1.tenancy.oc1..t,leaver@example.net,UNSUBSCRIBE,2024-02-02T09:00Z,
ocid1.emailsuppression.oc1..c,ocid1.tenancy.oc1..t,soft@example.net,softbounce,2024-02-03T09:00:00.000Z,
"""


def listed(cli, project: Path) -> dict[str, tuple[str, str]]:
    rows = json.loads(cli(project, "suppressions", "list", "--json").out)
    return {r["address"]: (r["reason"], r["note"]) for r in rows}


def test_an_ses_export_is_imported_once(project: Path, cli) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    (project / "ses.csv").write_text(SES)
    result = cli(project, "import", "suppressions", "ses.csv")
    assert result.code == 0, result.err
    assert "Imported 2 suppression(s) from ses.csv (AWS SES export)" in result.out
    assert "2 added, 0 already suppressed" in result.out
    assert listed(cli, project) == {
        "gone@example.org": (
            "HARDBOUNCE",
            "imported from AWS SES: BOUNCE at 2024-03-01T10:15:00+00:00",
        ),
        "Angry@example.org": (
            "COMPLAINT",
            "imported from AWS SES: COMPLAINT at 2024-03-01T10:15:00+00:00",
        ),
    }
    store = EmbeddedStore(project / DATA)  # what the relay reads at RCPT
    assert store.suppressions.reason("GONE@example.org") == "HARDBOUNCE"
    store.close()
    again = cli(project, "import", "suppressions", "ses.csv")
    assert again.code == 0 and "0 added, 2 already suppressed" in again.out
    assert len(listed(cli, project)) == 2


def test_an_oci_export_and_a_headerless_file(project: Path, cli) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    (project / "oci.csv").write_text(OCI)
    result = cli(project, "import", "suppressions", "oci.csv")
    assert result.code == 0, result.err
    assert "(OCI Email Delivery export)" in result.out and "3 added" in result.out
    reasons = {a: r for a, (r, _) in listed(cli, project).items()}
    assert reasons == {
        "hard@example.net": "HARDBOUNCE",
        "leaver@example.net": "UNSUBSCRIBE",
        "soft@example.net": "SOFTBOUNCE",
    }
    (project / "bulk.csv").write_text("bulk@example.net,BOUNCE\nhard@example.net,COMPLAINT\n")
    bulk = cli(project, "import", "suppressions", "bulk.csv")
    assert bulk.code == 0 and "(AWS SES export)" in bulk.out and "1 added, 1 already" in bulk.out
    assert listed(cli, project)["hard@example.net"][0] == "HARDBOUNCE"  # the first stays


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(project: Path, cli) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    bad = SES + "not-an-address,BOUNCE,\nok@example.org,SPAM,\nlate@example.org,BOUNCE,yesterday\n"
    (project / "bad.csv").write_text(bad)
    result = cli(project, "import", "suppressions", "bad.csv")
    assert result.code == 1
    assert "bad.csv:4: 'not-an-address' is not a valid email address" in result.err
    assert "bad.csv:5: reason 'SPAM': SES's are BOUNCE or COMPLAINT" in result.err
    assert "bad.csv:6: time 'yesterday' is neither RFC 3339 nor Unix seconds" in result.err
    assert "3 bad row(s) in bad.csv: nothing was imported." in result.err
    assert "Traceback" not in result.err
    assert listed(cli, project) == {}
    (project / "oci-bad.csv").write_text(OCI.replace("UNSUBSCRIBE", "BOUNCE"))
    oci = cli(project, "import", "suppressions", "oci-bad.csv")
    assert oci.code == 1 and "oci-bad.csv:3: reason 'BOUNCE': OCI's are" in oci.err
    (project / "odd.csv").write_text("name,value\nx,y\n")
    odd = cli(project, "import", "suppressions", "odd.csv")
    assert odd.code == 1 and "neither a header naming EmailAddress" in odd.err
    assert listed(cli, project) == {}
    missing = cli(project, "import", "suppressions", "nowhere.csv")
    assert missing.code == 1 and "cannot read nowhere.csv" in missing.err
    usage = cli(project, "import", "suppressions")
    assert usage.code == 1 and "postform import suppressions FILE.csv" in usage.err


def test_the_relay_refuses_an_imported_address_at_rcpt(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay").start()
    try:
        (relay.folder / "ses.csv").write_text(SES)
        relay.postform("import", "suppressions", "ses.csv")
        client = relay.smtp()
        client.mail("noreply@example.com")
        code, text = client.rcpt("gone@example.org")
        assert (code, text) == (
            550,
            reply_text(R.S550_SUPPRESSED, address="gone@example.org", reason="HARDBOUNCE"),
        )
        assert client.rcpt("fine@example.org")[0] == 250
        client.quit()
    finally:
        assert relay.stop() == 0
