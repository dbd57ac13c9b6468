#!/usr/bin/env bash
# Make a wheelhouse for scripts/gpu_check.sh: run it on a machine with internet, then carry the
# folder to the GPU machine (docs/scale.md, "Checking a GPU machine").
#
#   bash scripts/wheelhouse.sh [DIR] [--have FILE]      # DIR: default ./wheelhouse
#
# It holds the project's dependencies other than torch, transformers, accelerate, peft and the
# CUDA libraries (and whatever those pull in), which the GPU machine is assumed to have:
# hydra-core, omegaconf, antlr4 (built from its sdist), datasets, liger-kernel (learner.liger_kernel), deepspeed (built from its sdist
# with DS_BUILD_OPS=0: its ops compile on first use), their dependencies, and the project itself,
# at constraints.txt's pins. Wheels with compiled code are for CPython on manylinux x86_64, for
# each version in $WHEELHOUSE_PYTHONS (default 3.12; e.g. "3.11 3.12").
#
# --have FILE: the GPU machine's `python3 -m pip list --format=freeze` (or one name a line). The
# resolution keeps its versions where they fit, and the wheelhouse leaves out what it already has.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=wheelhouse
HAVE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --have) HAVE=$(realpath "${2:?--have needs a file}"); shift 2 ;;
    -*) echo "usage: bash scripts/wheelhouse.sh [DIR] [--have FILE]" >&2; exit 2 ;;
    *) DIR=$1; shift ;;
  esac
done
PYTHON=${PYTHON:-python3}
PYTHONS=${WHEELHOUSE_PYTHONS:-3.12}
PIP=("$PYTHON" -m pip)
mkdir -p "$DIR" && DIR=$(cd "$DIR" && pwd)
if [ -n "$(find "$DIR" -mindepth 1 ! -name '*.whl' -print -quit)" ]; then
  echo "wheelhouse.sh: $DIR holds more than wheels; give a new folder or one of wheels only" >&2
  exit 2
fi
rm -f "$DIR"/*.whl  # a fresh set: two versions of one package would stop the install
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
grep -E '^(hydra-core|omegaconf|antlr4-python3-runtime|datasets|deepspeed|liger-kernel)==' constraints.txt >"$WORK/pins.txt"

# 1. built here: antlr4 has no wheel on PyPI, deepspeed's is built without its ops, and the project
"${PIP[@]}" wheel -q --no-cache-dir --no-deps -c "$WORK/pins.txt" --no-binary antlr4-python3-runtime -w "$DIR" \
  antlr4-python3-runtime
DS_BUILD_OPS=0 "${PIP[@]}" wheel -q --no-cache-dir --no-deps -c "$WORK/pins.txt" --no-binary deepspeed -w "$DIR" \
  deepspeed
[ -e build ] && had_build=1 || had_build=0
"${PIP[@]}" wheel -q --no-cache-dir --no-deps -w "$DIR" .
[ "$had_build" = 1 ] || rm -rf build  # setuptools' scratch folder, unless it was there before

PLATFORMS=(--implementation cp --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for n in $(seq 5 39); do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done

# resolve REPORT PYVER REQUIREMENT...: what pip would install on the GPU machine (metadata only)
resolve() {
  local report=$1 py=$2; shift 2
  "${PIP[@]}" install -q --dry-run --ignore-installed --report "$report" --only-binary=:all: --python-version "$py" \
    "${PLATFORMS[@]}" --target "$WORK/target" --find-links "$DIR" -c "$WORK/pins.txt" "$@"
}

# select.py REPORT [EXCLUDED_REPORT | --have FILE]: name==version of each wheel to fetch
cat >"$WORK/select.py" <<'EOF'
import json, re, sys

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def resolved(path):
    return {norm(i["metadata"]["name"]): i["metadata"]["version"] for i in json.load(open(path))["install"]}

def release(version):  # 2.11.0+cu130 -> 2.11.0: a local build of the same release counts as present
    return version.split("+")[0]

wanted = resolved(sys.argv[1])
if sys.argv[2] == "--have":  # name==version lines (pip freeze) or bare names: present at any version
    have = {}
    for line in open(sys.argv[3]):
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            have[norm(name)] = release(version) or None
    skip = {n for n, v in wanted.items() if n in have and have[n] in (None, release(v))}
    if sys.argv[4:] == ["--pins"]:  # constraints: the GPU machine's versions of what the project needs
        print("\n".join(f"{n}=={have[n]}" for n in wanted if have.get(n)))
        sys.exit()
else:
    skip = set(resolved(sys.argv[2]))
built = {"rlpretrain", "deepspeed", "antlr4-python3-runtime"}
gpu_stack = re.compile(r"torch|triton|nvidia-.*|cuda-.*")  # never carried: the machine's own CUDA build
print("\n".join(f"{n}=={v}" for n, v in sorted(wanted.items())
                 if n not in skip | built and not gpu_stack.fullmatch(n)))
EOF

for py in $PYTHONS; do
  resolve "$WORK/want.json" "$py" rlpretrain deepspeed liger-kernel
  if [ -n "$HAVE" ]; then
    # again, held to the GPU machine's versions (pip stops here, naming the conflict, if they cannot fit)
    "$PYTHON" "$WORK/select.py" "$WORK/want.json" --have "$HAVE" --pins >"$WORK/have-pins.txt"
    resolve "$WORK/want.json" "$py" -c "$WORK/have-pins.txt" rlpretrain deepspeed liger-kernel
    "$PYTHON" "$WORK/select.py" "$WORK/want.json" --have "$HAVE" >"$WORK/fetch.txt"
  else
    resolve "$WORK/present.json" "$py" torch transformers accelerate peft
    "$PYTHON" "$WORK/select.py" "$WORK/want.json" "$WORK/present.json" >"$WORK/fetch.txt"
  fi
  if [ -s "$WORK/fetch.txt" ]; then
    "${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version "$py" "${PLATFORMS[@]}" -d "$DIR" \
      -r "$WORK/fetch.txt"
  fi
done

echo "wheelhouse: $DIR, $(ls "$DIR"/*.whl | wc -l) wheels, $(du -sh "$DIR" | cut -f1) (Python $PYTHONS)"
