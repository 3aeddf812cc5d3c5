"""Bounce messages and complaints as MTAs and mailbox providers send them, for tests:
an RFC 3464 delivery status notification and an RFC 5965 ARF report (the RFC's example
shapes), built as bytes."""

from __future__ import annotations


def dsn(return_path: str, recipient: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    diagnostic = f"smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown"
    return (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        f"To: {return_path}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n"
        "Arrival-Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: Example <noreply@example.com>\r\n"
        f"To: {recipient}\r\n"
        "Subject: Hello\r\n"
        "\r\n"
        "--b1--\r\n"
    ).encode()


def arf(return_path: str, recipient: str) -> bytes:
    return (
        "From: <abusedesk@provider.example>\r\n"
        "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
        "Subject: FW: Hello\r\n"
        f"To: <{return_path}>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="part1"\r\n'
        "\r\n"
        "--part1\r\n"
        'Content-Type: text/plain; charset="US-ASCII"\r\n'
        "\r\n"
        "This is an email abuse report for an email message received from IP\r\n"
        "192.0.2.10 on Sun, 29 Nov 2026 09:00:00 +0000.\r\n"
        "\r\n"
        "--part1\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        "Feedback-Type: abuse\r\n"
        "User-Agent: SomeGenerator/1.0\r\n"
        "Version: 1\r\n"
        f"Original-Mail-From: <{return_path}>\r\n"
        f"Original-Rcpt-To: <{recipient}>\r\n"
        "Arrival-Date: Sun, 29 Nov 2026 09:00:00 +0000\r\n"
        "Source-IP: 192.0.2.10\r\n"
        "\r\n"
        "--part1\r\n"
        "Content-Type: message/rfc822\r\n"
        "Content-Disposition: inline\r\n"
        "\r\n"
        "From: <noreply@example.com>\r\n"
        f"To: <{recipient}>\r\n"
        "Subject: Hello\r\n"
        "Date: Sun, 29 Nov 2026 08:59:00 +0000\r\n"
        "\r\n"
        "Hi there.\r\n"
        "\r\n"
        "--part1--\r\n"
    ).encode()
