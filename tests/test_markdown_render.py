"""The pull-request Markdown, rendered as GitHub does (CommonMark with GFM tables, by
markdown-it-py): the table of changes must be a table of its own, not rows swallowed by
the quote before it, whatever comes first (notes, warnings, a refusal, drift)."""

from __future__ import annotations

import dataclasses
import re
from html import unescape
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from reconciler.diff import diff
from reconciler.render.markdown import md, render_markdown
from reconciler.resources import Resource
from tests.test_dns_live import push_all, verify
from tests.test_plan_review import FORTY_ONE, REFUSAL, SENDERS


def parse(text: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(text)


def html(text: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(text)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the one table, which must be at the top level (not in a quote),
    each cell as rendered HTML (entities decoded)."""
    opens = [t for t in parse(text) if t.type == "table_open"]
    assert len(opens) == 1, "expected exactly one table"
    assert opens[0].level == 0, "the table is nested (in a quote or a list)"
    (body,) = re.findall(r"<tbody>\n(.*?)</tbody>", html(text), re.S)
    return [
        [unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>\n(.*?)</tr>", body, re.S)
    ]


def quotes(text: str) -> list[str]:
    """The text of each top-level quote, as HTML."""
    rendered = html(text)
    return re.findall(r"<blockquote>\n(.*?)</blockquote>", rendered, re.S)


def test_a_plan_with_notes_renders_its_table(project: Path, cli) -> None:
    text = cli(project, "plan", "--markdown").out
    assert "> **Note:** dkim" in text  # a new selector: a note right before the table
    rows = table_rows(text)
    assert len(rows) == 9
    assert rows[0] == ["create", "<code>relay</code>", "hostname, ipv4, ipv6, spf_domain"]
    dkim = [
        "create",
        '<code>dkim["example.com/s1"]</code>',
        "activation, algorithm, domain, selector",
    ]
    assert dkim in rows
    notes = [q for q in quotes(text) if "Note:" in q]
    assert len(notes) == 1 and "<table>" not in notes[0] and "NEEDS_ATTENTION" in notes[0]


def test_a_plan_with_warnings_renders_them_apart_and_the_table(project: Path, cli) -> None:
    config = project / "postform.yaml"
    config.write_text(
        config.read_text()
        .replace("  - billing@example.com\n", "  - billing@example.com\n  - a@b.org\n")
        .replace("users:\n", "users:\n  ops:\n    credentials: [ci]\n")
    )
    text = cli(project, "plan", "--markdown").out
    rows = table_rows(text)
    assert ["create", '<code>user["ops"]</code>', ""] in rows
    (warnings,) = [q for q in quotes(text) if "Warning:" in q]
    paragraphs = re.findall(r"<p><strong>Warning:</strong> (.*?)</p>", warnings, re.S)
    assert len(paragraphs) == 2  # one paragraph each, not run together
    assert unescape(paragraphs[1]).startswith('user["ops"] is created without a senders list')


def test_a_refused_plan_renders_the_refusal_and_the_table(tmp_path: Path, cli) -> None:
    (tmp_path / "postform.yaml").write_text(FORTY_ONE)
    assert cli(tmp_path, "apply", "--auto-approve").code == 0
    kept = "".join(f"  - u{i:02}@example.com\n" for i in range(20, 41))
    (tmp_path / "postform.yaml").write_text(FORTY_ONE.replace(SENDERS, kept))
    text = cli(tmp_path, "plan", "--markdown").out
    rows = table_rows(text)
    assert len(rows) == 20 and rows[0] == [
        "<strong>destroy</strong>",
        '<code>sender["u00@example.com"]</code>',
        "not in the configuration",
    ]
    assert all(row[0] == "<strong>destroy</strong>" for row in rows)
    (safety,) = [q for q in quotes(text) if "Safety:" in q]
    assert f"<li>{REFUSAL}</li>" in unescape(safety)
    assert "<code>postform apply --allow-destructive</code>" in safety
    assert "<h3>postform plan: Plan: 0 to add, 0 to change, 20 to destroy. " in html(text)


def test_a_plan_with_drift_renders_the_drift_the_fix_and_the_table(
    dns_project: Path, cli, knot
) -> None:
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    push_all(cli, dns_project, knot)
    assert verify(cli, dns_project, knot).code == 0
    knot.update("example.com", delete=[("_dmarc.example.com", "TXT")])
    assert cli(dns_project, "refresh", "--nameserver", knot.server).code == 0
    config = dns_project / "postform.yaml"
    config.write_text(
        config.read_text().replace(
            "senders: [noreply@example.com]", "senders: [noreply@example.com, x@example.com]"
        )
    )
    text = cli(dns_project, "plan", "--markdown").out
    assert table_rows(text) == [["create", '<code>sender["x@example.com"]</code>', "domain"]]
    rendered = html(text)
    items = re.findall(r"<li>(.*?)</li>", rendered, re.S)
    assert len(items) == 1
    assert items[0].startswith(
        "_dmarc.example.com TXT (domain[&quot;example.com&quot;]) was verified"
    )
    assert "<em>" not in rendered
    assert "<code>postform dns push --server PRIMARY --zone example.com</code>" in rendered


def test_list_changes_render_item_by_item_in_the_table() -> None:
    before = Resource("user", "app", {"senders": [f"u{i}@x.org" for i in range(9)]})
    after = Resource("user", "app", {"senders": [f"u{i}@x.org" for i in range(1, 9)] + ["n@x.org"]})
    stored = {
        before.address: {
            "type": "user",
            "name": "app",
            "attributes": before.attributes,
            "computed": {},
        }
    }
    text = render_markdown(diff({after.address: after}, stored))
    (row,) = table_rows(text)
    assert row == [
        "update in place",
        '<code>user["app"]</code>',
        'senders: <code>- "u0@x.org"</code>, <code>+ "n@x.org"</code>',
    ]


def test_free_text_is_escaped_outside_code_spans() -> None:
    assert md("a_b *c* <d> [e] x|y `k_*<` z") == r"a\_b \*c\* \<d> \[e\] x\|y `k_*<` z"
    plan = dataclasses.replace(
        diff({}, {}), warnings=("<script>alert(1)</script> *bold* in `code_span`",)
    )
    rendered = html(render_markdown(plan))
    assert "<script>" not in rendered and "<em>" not in rendered
    assert "<code>code_span</code>" in rendered
