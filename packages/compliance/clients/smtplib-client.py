"""Sends one message with Python's smtplib and prints the outcome as one JSON line.

The compliance suite runs it in a child process:
    python3 smtplib-client.py '{"host": "127.0.0.1", "port": 2525, "mode": "starttls", ...}'

Job keys: host, port, mode ("plain", "starttls" or "smtps"), ca (PEM; the certificate is verified
against it for the name "localhost"), from, to, message (the whole message text).
Output: {"ok": true, "refused": {...}, "tls": "TLSv1.3"} or {"ok": false, "error": "..."}.
"""

import json
import smtplib
import ssl
import sys

job = json.loads(sys.argv[1])
context = ssl.create_default_context(cadata=job.get("ca")) if job.get("ca") else None
mode = job.get("mode", "plain")


class SMTPS(smtplib.SMTP_SSL):
    """Connects to the given address but checks the certificate for the name "localhost"."""

    def _get_socket(self, host, port, timeout):
        self._host = "localhost"
        return super()._get_socket(host, port, timeout)


try:
    if mode == "smtps":
        client = SMTPS(job["host"], job["port"], context=context, timeout=20)
    else:
        client = smtplib.SMTP(job["host"], job["port"], timeout=20)
    with client:
        client.ehlo("client.compliance.test")
        if mode == "starttls":
            client._host = "localhost"  # the name checked against the certificate
            client.starttls(context=context)
            client.ehlo("client.compliance.test")
        version = client.sock.version() if hasattr(client.sock, "version") else None
        refused = client.sendmail(job["from"], job["to"], job["message"])
    refused = {k: list(v) for k, v in refused.items()} if refused else {}
    print(json.dumps({"ok": True, "refused": refused, "tls": version}, default=str))
except Exception as error:  # noqa: BLE001 - the suite reports any failure
    print(json.dumps({"ok": False, "error": f"{type(error).__name__}: {error}"}))
