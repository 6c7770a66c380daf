"""The contract between Burrow and the official Python client (`opencode-ai`
on PyPI): the calls its version still shares with OpenCode 1.18.33. Needs
BURROW_URL (a running server) and BURROW_ROOT (its workspace, holding
hello.txt). Any failed check exits non-zero.

The client reads answers without validating them, so each check looks at the
fields an application reads.
"""

import os
import sys

from opencode_ai import NotFoundError, Opencode


def main() -> None:
    client = Opencode(base_url=os.environ["BURROW_URL"], max_retries=0)

    session = client.session.create()
    assert session.id.startswith("ses_"), session
    assert session.title.startswith("New session - "), session
    assert any(s.id == session.id for s in client.session.list()), "the new session is listed"
    assert client.session.messages(session.id) == [], "a new session has no messages"
    assert client.session.abort(session.id) is True

    assert client.app.log(level="info", message="hello from python", service="python-contract") is True
    providers = client.app.providers()
    assert isinstance(providers.providers, list) and isinstance(providers.default, dict), providers
    config = client.config.get()
    assert config is not None

    matches = client.find.text(pattern="hello sdk")
    assert any(m.path.text == "hello.txt" for m in matches), matches
    assert "hello.txt" in client.find.files(query="hello")
    assert client.find.symbols(query="hello") == []
    assert client.file.status() == [], "the workspace is not a git repository"

    assert client.tui.append_prompt(text="from python") is True
    assert client.tui.open_help() is True

    assert client.session.delete(session.id) is True
    try:
        client.session.delete(session.id)
    except NotFoundError as e:
        assert e.status_code == 404
    else:
        raise AssertionError("deleting a deleted session is a 404")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure fails the contract
        print(f"python sdk contract: FAILED: {e!r}", file=sys.stderr)
        raise
    print("python sdk contract: ok")
