"""Run each test file in its own pytest process and print one combined summary.

Every file builds many compiled tokenizers and TF models; in one process their graphs and
tables add up to more memory than the 24 GB CI machine has. A process per file returns it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

COUNTS = ("passed", "failed", "skipped", "xfailed", "xpassed", "error", "errors")


def main(args: list[str]) -> int:
    totals = dict.fromkeys(COUNTS, 0)
    status = 0
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        print(f"== {path.name}", flush=True)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", *args, str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        print(run.stdout, end="", flush=True)
        summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
        for number, word in re.findall(r"(\d+) (\w+)", summary):
            if word in totals:
                totals[word] += int(number)
        if run.returncode not in (0, 5):
            status = 1
    failed = totals["failed"] + totals["error"] + totals["errors"]
    skipped = totals["skipped"] + totals["xfailed"]
    print(f"{totals['passed']} passed, {failed} failed, {skipped} skipped")
    return status or int(failed > 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
