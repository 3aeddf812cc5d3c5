"""Apply's dialogue on a terminal or in a CI log: the ApplyUI the commands use."""

from __future__ import annotations

import sys
from pathlib import Path

from reconciler.apply import IssuedCredential
from reconciler.cli.output import err, out
from reconciler.plan import Plan
from reconciler.render.text import render_text


class ConsoleUI:
    def show_plan(self, plan: Plan) -> None:
        out(render_text(plan))

    def confirm(self) -> bool:
        out(
            "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve."
            "\n\n  Enter a value: "
        )
        answer = sys.stdin.readline().strip() if sys.stdin is not None else ""
        return answer == "yes"

    def progress(self, line: str) -> None:
        out(line + "\n")

    def info(self, text: str) -> None:
        out(text)

    def warn(self, text: str) -> None:
        err(text)

    def passwords(self, issued: list[IssuedCredential], written_to: Path | None) -> None:
        if written_to is not None:
            out(
                f"\nWrote {len(issued)} new SMTP credential(s) to {written_to} (mode 0600). The "
                "passwords are not shown and cannot be recovered: only their hashes are kept.\n"
            )
            return
        out("\nNew SMTP credentials. Store the passwords now: they are shown only this once.\n")
        for c in issued:
            out(f"\n  {c.address}\n    username: {c.username}\n    password: {c.password}\n")
