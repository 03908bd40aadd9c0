"""aiosmtpd with SMTP options its command line does not expose (timeout, AUTH, call limits, LMTP).

Usage: /usr/bin/python3 aiosmtpd_server.py PORT '{"timeout": 2, ...}'

Every JSON key is an `aiosmtpd.smtp.SMTP` keyword argument, except these:
  "lmtp": true               serve aiosmtpd.lmtp.LMTP instead of SMTP
  "tls": [cert, key]         a STARTTLS context (tls_context), as the CLI builds it
  "authenticator": "user:pass"  accept only these credentials (AuthResult handled=False on failure,
                             so a failure is answered with 535 instead of aiosmtpd's silence)
  "handler": "data"          a handler whose handle_DATA returns "250 OK" (default: Sink, as the CLI profiles)
Prints "listening" on stdout once the socket is bound.
"""

import asyncio
import json
import ssl
import sys

from aiosmtpd.handlers import Sink
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult


class DataHandler:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def main() -> None:
    port = int(sys.argv[1])
    kwargs = json.loads(sys.argv[2])
    cls = LMTP if kwargs.pop("lmtp", False) else SMTP
    tls = kwargs.pop("tls", None)
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.check_hostname = False
        context.load_cert_chain(tls[0], tls[1])
        kwargs["tls_context"] = context
    credentials = kwargs.pop("authenticator", None)
    if credentials:
        login, password = (part.encode() for part in credentials.split(":", 1))

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == login and auth_data.password == password
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticator

    handler = DataHandler() if kwargs.pop("handler", None) == "data" else Sink()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: cls(handler, **kwargs), host="127.0.0.1", port=port)
    )
    print("listening", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
