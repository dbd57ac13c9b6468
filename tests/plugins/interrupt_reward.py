"""A reward that stops its own process with SIGINT at its Nth call (env STOP_AT_CALL), as Ctrl-C would."""

import os
import signal

_calls = 0


def stop_at(prompts, completions, **kwargs):
    global _calls
    _calls += 1
    if _calls == int(os.environ.get("STOP_AT_CALL", "0")):
        os.kill(os.getpid(), signal.SIGINT)
    return [0.0] * len(prompts)
