"""The README's curl line, run as written (taken from the README, so a drift fails here), opens a ticket."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.support.webhook_receiver import SECRET, Receiver

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_curl_line_opens_a_ticket(receiver: Receiver) -> None:
    block = re.search(r"<!-- webhook-curl -->\n```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block is not None, "the README lost its webhook curl block (<!-- webhook-curl -->)"
    env = {**os.environ, "CHATBOT_SECRET": SECRET, "HUB_URL": receiver.url}
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block.group(1)], env=env, capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"status":"accepted"' in done.stdout.replace(" ", ""), done.stdout
    ticket = receiver.ticket("chatbot", "c-1")
    assert ticket["title"] == "VPN client fails" and ticket["requester"] == "ana@example.org"
