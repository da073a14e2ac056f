"""Lint and breaking-change check of the contracts in protos/, offline.

    python tools/buf.py lint
    python tools/buf.py breaking [--against REF]

buf is the binary of the buf-bin wheel, found next to the running Python
(``sys.executable``). The googleapis protos that protos/ import (google/api,
google/rpc, google/type) are not in git: they are copied from the installed
googleapis-common-protos package into build/third_party/, the second module
of buf.yaml, which lint and breaking ignore. buf brings its own well-known
types (google/protobuf). Nothing is fetched: no BSR, no network.

``breaking`` compares the working tree's protos/ (committed or not, new files
included) with the protos/ of a baseline git ref, extracted with
``git archive`` into build/buf-against/ and built with the same buf.yaml and
the same third_party module. The rules are buf's FILE category. The baseline
is, in this order:

1. ``--against REF``, or ``$BUF_AGAINST``, when given; CI that knows the
   previous state of main should pass it.
2. the merge-base of HEAD and origin/main, when origin/main exists and HEAD
   is not on it (a branch, or local commits not yet pushed): every change
   since the branch left main is checked, committed or not.
3. HEAD, when protos/ has uncommitted changes: what you are about to commit
   is checked.
4. HEAD~1 otherwise: on a clean checkout (CI in a fresh clone, where HEAD is
   origin/main) the last commit is checked against its parent, so the check
   means something in CI and not only on a developer's dirty tree.

When the baseline has no protos/ (the first commit, or a repository without
history) there is nothing to break: the script says so and passes. A shallow
clone that lacks HEAD~1 fails rather than pass unchecked: fetch with
``--depth 2`` or more, or give --against.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTOS = "protos"
BUILD = REPO_ROOT / "build"
THIRD_PARTY = BUILD / "third_party"
AGAINST_DIR = BUILD / "buf-against"
GOOGLEAPIS_DIST = "googleapis-common-protos"


class CheckError(Exception):
    """The check could not run; the message says why."""


def find_buf() -> Path:
    """The buf binary installed by the buf-bin wheel into this environment."""
    candidates = [
        Path(sys.executable).parent / "buf",
        Path(sysconfig.get_path("scripts")) / "buf",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise CheckError(
        f"buf not found next to {sys.executable}: install buf-bin (requirements.txt) into this environment"
    )


def prepare_third_party() -> str:
    """Copy googleapis-common-protos' .proto files into build/third_party/.

    Returns a description of what was copied, for the log.
    """
    try:
        dist = importlib.metadata.distribution(GOOGLEAPIS_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise CheckError(f"{GOOGLEAPIS_DIST} is not installed in this environment") from exc
    files = [f for f in dist.files or [] if f.suffix == ".proto"]
    if not files:
        raise CheckError(f"{GOOGLEAPIS_DIST} {dist.version} ships no .proto files")
    shutil.rmtree(THIRD_PARTY, ignore_errors=True)
    for f in files:
        target = THIRD_PARTY / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dist.locate_file(f), target)
    return f"{len(files)} googleapis protos from {GOOGLEAPIS_DIST} {dist.version} in build/third_party/ (not checked)"


def run_buf(buf: Path, *args: str) -> int:
    return subprocess.run([str(buf), *args], cwd=REPO_ROOT).returncode


def git(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=check)


def git_ok(*args: str) -> bool:
    return git(*args, check=False).returncode == 0


def git_out(*args: str) -> str:
    return git(*args).stdout.strip()


def short(ref: str) -> str:
    return git_out("rev-parse", "--short", ref)


def choose_baseline(explicit: str | None) -> tuple[str | None, str]:
    """Return (commit or None for no baseline, why that baseline)."""
    if explicit:
        if not git_ok("rev-parse", "--verify", "--quiet", f"{explicit}^{{commit}}"):
            raise CheckError(f"--against {explicit}: no such commit")
        return git_out("rev-parse", f"{explicit}^{{commit}}"), f"{explicit}, as asked"
    if not git_ok("rev-parse", "--verify", "--quiet", "HEAD"):
        return None, "the repository has no commit yet"
    head = git_out("rev-parse", "HEAD")
    if git_ok("rev-parse", "--verify", "--quiet", "origin/main"):
        base = git(
            "merge-base", "HEAD", "origin/main", check=False
        ).stdout.strip()
        if base and base != head:
            return base, f"merge-base of HEAD and origin/main ({short(base)})"
    dirty = git_out("status", "--porcelain", "--untracked-files=all", "--", PROTOS)
    if dirty:
        return head, f"HEAD ({short(head)}): protos/ has uncommitted changes"
    if git_ok("rev-parse", "--verify", "--quiet", "HEAD~1"):
        parent = git_out("rev-parse", "HEAD~1")
        return parent, f"HEAD~1 ({short(parent)}): protos/ is clean, so the last commit is checked"
    if git_out("rev-parse", "--is-shallow-repository") == "true":
        raise CheckError(
            "shallow clone without HEAD~1: cannot see what the last commit changed; "
            "fetch with --depth 2 or more, or pass --against REF"
        )
    return None, "HEAD is the first commit"


def extract_baseline(commit: str) -> int:
    """Write the commit's protos/ and the current buf workspace into build/buf-against/.

    Returns the number of .proto files extracted.
    """
    shutil.rmtree(AGAINST_DIR, ignore_errors=True)
    AGAINST_DIR.mkdir(parents=True)
    listed = git_out("ls-tree", "-r", "--name-only", commit, "--", PROTOS).splitlines()
    protos = [p for p in listed if p.endswith(".proto")]
    if not protos:
        return 0
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "--", PROTOS],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(AGAINST_DIR, filter="data")
        else:
            tar.extractall(AGAINST_DIR)
    # The baseline is built like the working tree: same buf.yaml, same
    # googleapis, so only changes to protos/ show up.
    shutil.copyfile(REPO_ROOT / "buf.yaml", AGAINST_DIR / "buf.yaml")
    shutil.copytree(THIRD_PARTY, AGAINST_DIR / "build" / "third_party")
    return len(protos)


def count_protos() -> int:
    return sum(1 for _ in (REPO_ROOT / PROTOS).rglob("*.proto"))


def cmd_lint(buf: Path) -> int:
    third_party = prepare_third_party()
    print(
        f"==> buf lint: {count_protos()} files in protos/ "
        "(STANDARD except RPC_RESPONSE_STANDARD_NAME, RPC_REQUEST_RESPONSE_UNIQUE; see buf.yaml)"
    )
    print(f"    {third_party}")
    rc = run_buf(buf, "lint")
    print("    lint: OK" if rc == 0 else "    lint: FAILED")
    return rc


def cmd_breaking(buf: Path, against: str | None) -> int:
    if shutil.which("git") is None or not git_ok("rev-parse", "--git-dir"):
        print("==> buf breaking: not a git checkout, no baseline to compare with: skipped")
        return 0
    third_party = prepare_third_party()
    commit, why = choose_baseline(against)
    print(f"==> buf breaking: working tree protos/ against {why}; rules FILE (see buf.yaml)")
    print(f"    {third_party}")
    if commit is None:
        print("    no baseline: nothing to break: OK")
        return 0
    baseline_files = extract_baseline(commit)
    if baseline_files == 0:
        print(f"    {short(commit)} has no protos/: nothing to break: OK")
        return 0
    print(f"    baseline: {baseline_files} files of {short(commit)} in build/buf-against/")
    # --exclude-imports: a well-known type that drops out of the import graph
    # is not a change to our contracts.
    rc = run_buf(buf, "breaking", "--exclude-imports", "--against", str(AGAINST_DIR.relative_to(REPO_ROOT)))
    print("    breaking: OK" if rc == 0 else "    breaking: FAILED (a published contract changed incompatibly)")
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lint", help="buf lint on protos/")
    breaking = sub.add_parser("breaking", help="buf breaking against a baseline git ref")
    breaking.add_argument(
        "--against",
        default=os.environ.get("BUF_AGAINST") or None,
        help="git ref to compare with (default: see the module docstring; env BUF_AGAINST)",
    )
    args = parser.parse_args(argv)
    try:
        buf = find_buf()
        if args.command == "lint":
            return cmd_lint(buf)
        return cmd_breaking(buf, args.against)
    except CheckError as exc:
        print(f"buf.py: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or "").strip() if isinstance(exc.stderr, str) else ""
        print(f"buf.py: {' '.join(map(str, exc.cmd))} failed: {detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
