"""`python -m rlpretrain.sandbox run FILE [--call 'f(1, [2, 3])'] [--timeout S] [--memory MB] [--mode M]`

Prints the Result as one JSON object and exits 0 whatever the code did; 2 only for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import isolation, values
from .jobs import Job
from .limits import Limits
from .pool import SandboxPool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlpretrain.sandbox", description="Run untrusted Python in the sandbox.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a file, optionally calling one of its functions")
    run.add_argument("file", help="Python source file")
    run.add_argument("--call", help="entry call with literal arguments, e.g. 'f(1, [2, 3])'; "
                                    "without it the file runs as a script")
    run.add_argument("--timeout", type=float, default=Limits.timeout, help="wall-clock seconds (default %(default)s)")
    run.add_argument("--memory", type=int, default=Limits.memory_mb, help="address-space limit in MB (default %(default)s)")
    run.add_argument("--mode", default="auto", choices=("auto", *isolation.MODES), help="isolation mode")
    args = parser.parse_args(argv)
    try:
        with open(args.file, encoding="utf-8") as f:
            code = f.read()
    except (OSError, UnicodeDecodeError) as e:
        parser.error(f"cannot read {args.file}: {e}")
    func, call_args, call_kwargs = None, [], {}
    if args.call is not None:
        try:
            func, call_args, call_kwargs = values.parse_call(args.call)
        except ValueError as e:
            parser.error(f"--call must be a function name with literal arguments, e.g. f(1, [2, 3]): {e}")
    try:
        limits = Limits(timeout=args.timeout, memory_mb=args.memory)
    except ValueError as e:
        parser.error(str(e))
    with SandboxPool(1, mode=args.mode, limits=limits) as pool:
        result = pool.run(Job(code, func=func, args=call_args, kwargs=call_kwargs))
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
