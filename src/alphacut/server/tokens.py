"""The server's token: where it comes from, and keeping it out of every log.

By default each launch makes a new random token (``security.new_token``). Integrations that
call the API from a script or a container need one that survives restarts: it comes from the
environment variable ``ALPHACUT_TOKEN`` or from a file (``--token-file``, e.g. a Docker/Compose
secret). Either way it must look like a secret (long enough, no spaces), or the server refuses
to start: a guessable token on a port other machines can reach is worse than none.

Tokens reach the server in three places (``Authorization: Bearer``, ``X-Api-Key``,
``?token=``); the last one is part of the request line, which uvicorn's access log prints.
``RedactTokens`` is a logging filter that blanks ``token=`` values and the token itself from
every record of the loggers it is installed on.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

ENV_VAR = "ALPHACUT_TOKEN"
MIN_LENGTH = 20
#: what a token may hold: printable ASCII without spaces, quotes or separators that break
#: headers, cookies and query strings
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/=-]+")
#: ``token=<value>`` in a query string or a URL anywhere in a log line
_QUERY_TOKEN = re.compile(r"(?i)((?:^|[?&\s\"'])token=)[^&\s\"']*")
REDACTED = "[redacted]"
#: uvicorn's loggers: the access log (request lines) and the error log (tracebacks with URLs)
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "alphacut")


@dataclass(frozen=True)
class StableToken:
    token: str
    #: where it came from, for the startup message: "ALPHACUT_TOKEN" or the file's path
    source: str


def check_token(token: str, source: str) -> str:
    """``token`` stripped, or a UsageError saying what is wrong with it (never the token itself)."""
    token = token.strip()
    if not token:
        raise UsageError(f"the token from {source} is empty")
    if not _TOKEN_RE.fullmatch(token):
        raise UsageError(f"the token from {source} has characters a token cannot hold (use letters, digits and "
                         "._~+/=-, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    if len(token) < MIN_LENGTH:
        raise UsageError(f"the token from {source} is {len(token)} characters; at least {MIN_LENGTH} are needed "
                         "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return token


def stable_token(token_file: str | Path | None = None, environ: dict[str, str] | None = None,
                 warn: logging.Logger | None = None) -> StableToken | None:
    """The token an integration can rely on: ``--token-file`` first, then ``ALPHACUT_TOKEN``; None
    when neither is given (the server then makes a per-launch one)."""
    env = os.environ if environ is None else environ
    if token_file is not None:
        path = Path(token_file)
        try:
            text = path.read_text(encoding="ascii")
        except UnicodeDecodeError:
            raise UsageError(f"{path}: the token file is not plain ASCII text") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the token file ({exc.strerror or exc})") from None
        if os.name == "posix":
            mode = path.stat().st_mode
            if mode & (stat.S_IRGRP | stat.S_IROTH) and warn is not None:
                # Compose/Kubernetes secrets are mounted world-readable inside the container, so
                # this is a warning, not a refusal
                warn.warning("%s is readable by other users (chmod 600 it outside a container)", path)
        return StableToken(check_token(text, str(path)), str(path))
    value = env.get(ENV_VAR)
    if value is not None:
        return StableToken(check_token(value, ENV_VAR), ENV_VAR)
    return None


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every ``token=`` value and every one of ``secrets`` replaced."""
    text = _QUERY_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    for s in secrets:
        if s:
            text = text.replace(s, REDACTED)
    return text


class RedactTokens(logging.Filter):
    """Rewrites a record's message and arguments so no token reaches a handler."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, self.secrets)
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact(a, self.secrets) if isinstance(a, str) else a for a in args)
        return True


def install_redaction(secrets: tuple[str, ...] = ()) -> RedactTokens:
    """Put a ``RedactTokens`` on the server's loggers (uvicorn configures them when its Config is
    built, which happens before the app starts); returns it for ``remove_redaction``."""
    f = RedactTokens(secrets)
    for name in LOGGERS:
        logging.getLogger(name).addFilter(f)
    return f


def remove_redaction(f: RedactTokens) -> None:
    for name in LOGGERS:
        logging.getLogger(name).removeFilter(f)
