"""The banned-module check on a program's AST: imports, `__import__`, `importlib` and attribute access.

The sandbox's isolation is the security boundary; this check keeps tasks deterministic and honest
(the paper's banned list: AZR §3.3, logging, random, multiprocessing, pebble, subprocess, threading,
datetime, time, hashlib, calendar, bcrypt, os.sys, os.path, sys.exit, os.environ). The official
check matched import statements only and never dotted names, so `import os`, `__import__("os")`
and `open()` passed; here whole modules are banned (`os`, `sys`, not only `os.path`), and so are the
builtins and attributes that reach modules or frames without an import statement.
"""

from __future__ import annotations

import ast

# The paper's list, with the dotted entries widened to their module, plus the modules that reach the
# system, the interpreter's internals or other processes.
BANNED_MODULES = (
    "logging", "random", "multiprocessing", "pebble", "subprocess", "threading", "datetime", "time",
    "hashlib", "calendar", "bcrypt", "os", "sys",
    "importlib", "builtins", "shutil", "socket", "signal", "ctypes", "pathlib", "io", "tempfile",
    "pickle", "marshal", "inspect", "gc", "resource", "pty", "select", "asyncio", "concurrent",
    "secrets", "uuid", "urllib", "http", "code", "codeop", "runpy", "types", "weakref", "_thread",
)
# Names that run code, import, do I/O or reach the builtins / frames without an import statement.
BANNED_NAMES = frozenset({
    "__import__", "eval", "exec", "compile", "open", "input", "breakpoint", "globals", "locals", "vars",
    "getattr", "setattr", "delattr", "__builtins__", "__loader__", "__spec__", "exit", "quit", "help",
})
# Attributes that lead from any object to modules, globals or frames (the classic
# `().__class__.__base__.__subclasses__()` escape), and the calls of os-like modules.
BANNED_ATTRIBUTES = frozenset({
    "__globals__", "__builtins__", "__subclasses__", "__bases__", "__base__", "__mro__", "__code__",
    "__closure__", "__dict__", "__getattribute__", "__import__", "__loader__", "__spec__", "__reduce__",
    "__reduce_ex__", "__self__", "__func__", "__module__", "__traceback__", "f_globals", "f_locals",
    "f_back", "f_builtins", "gi_frame", "gi_code", "cr_frame", "ag_frame", "tb_frame", "modules",
    "system", "popen", "environ", "fork", "kill", "_exit", "spawnv", "execv", "execve",
})


def violations(code: str, banned_modules=BANNED_MODULES, entry: str = "f") -> list[str]:
    """Why `code` is not an acceptable program (empty when it is): it must parse, define `entry` at
    the top level, and use no banned module, name or attribute."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        return [f"does not parse: {type(e).__name__}"]
    banned = set(banned_modules)
    found: list[str] = []
    if not any(isinstance(n, ast.FunctionDef) and n.name == entry for n in tree.body):
        found.append(f"no top-level function {entry}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if _banned_module(a.name, banned)]
        elif isinstance(node, ast.ImportFrom):
            if node.level or _banned_module(node.module or "", banned):
                found.append(f"imports from {'.' * node.level}{node.module or ''}")
        elif isinstance(node, ast.Name) and node.id in BANNED_NAMES:
            found.append(f"uses {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in BANNED_ATTRIBUTES:
            found.append(f"accesses .{node.attr}")
    return list(dict.fromkeys(found))


def _banned_module(name: str, banned: set[str]) -> bool:
    """`os.path` is banned by `os` or `os.path`; the root of any dotted name counts."""
    parts = name.split(".")
    return any(".".join(parts[:i]) in banned for i in range(1, len(parts) + 1))
