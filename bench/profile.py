"""``python -m bench.profile STACKS``: where a benchmark's processes spent their time.

``STACKS`` is what ``py-spy record --format raw`` wrote (one line per distinct stack: frames
from the root, separated by ``;``, then the number of samples), recorded over a benchmark run,
for instance::

    py-spy record --subprocesses --nonblocking --format raw -o b3.raw -- \\
        python -m bench.run --only B3 --results /tmp/b3

Only stacks passing through a frame of ``--within`` (a function, or ``file.py:function``; by
default ``catch_up``, the replicas' loop) are counted, from that frame up. The summary, in
Markdown, lists the functions by their own samples (the frame on top of the stack) and by their
inclusive samples (anywhere in the stack, once per stack), each as a share of those counted.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# "consume_batch (services/feeds/runner.py:77)": the function and its file, without the
# line, so that samples of one function at several lines count together.
_FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def function_of(frame: str) -> str:
    """``runner.py:consume_batch`` for a frame of ``services/feeds/runner.py``."""
    found = _FRAME.match(frame.strip())
    if found is None:
        return frame.strip()
    return f"{Path(found['file']).name}:{found['function']}"


@dataclass(frozen=True)
class Profile:
    samples: int
    own: Counter[str]
    inclusive: Counter[str]


def summarise(lines: Iterable[str], within: str) -> Profile:
    """The samples of the stacks that pass through a function named ``within``."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        functions = [function_of(frame) for frame in stack.split(";")]
        entered = next(
            (at for at, f in enumerate(functions) if within in (f, f.rpartition(":")[2])), None
        )
        if entered is None:
            continue
        # The frames below it (processes, pools, the benchmark) hold every sample alike.
        functions = functions[entered:]
        samples += int(count)
        own[functions[-1]] += int(count)
        for function in set(functions):
            inclusive[function] += int(count)
    return Profile(samples, own, inclusive)


def markdown(profile: Profile, top: int) -> str:
    if not profile.samples:
        return "No samples passed through the function asked for.\n"
    lines = [f"{profile.samples:,} samples.", ""]
    for title, counts in (("own", profile.own), ("inclusive", profile.inclusive)):
        lines += [f"| function | {title} |", "|---|---|"]
        lines += [
            f"| `{function}` | {count / profile.samples:.1%} |"
            for function, count in counts.most_common(top)
        ]
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("stacks", type=Path, help="py-spy's raw (collapsed) output")
    parser.add_argument("--within", default="catch_up", help="count stacks through this")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    with args.stacks.open(encoding="utf-8", errors="replace") as lines:
        print(markdown(summarise(lines, args.within), args.top), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
