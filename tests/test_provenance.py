"""Provenance: which code made a result, from the git checkout the package runs from."""

import re
import subprocess

from tracegen import __version__
from tracegen.provenance import PACKAGE_ROOT, code_label, git_state, provenance


def test_a_checkout_names_its_commit_and_a_wheel_its_version_alone(tmp_path):
    commit, dirty = git_state()
    top = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if top.returncode == 0:  # the tests run from a checkout (CI clones one)
        assert commit == top.stdout.strip() and isinstance(dirty, bool)
        assert re.fullmatch(rf"{re.escape(__version__)}\+g[0-9a-f]{{12}}(\.dirty)?", code_label())
    fake = tmp_path / "site-packages" / "tracegen"  # not the src/tracegen of a checkout: no commit claimed
    fake.mkdir(parents=True)
    assert git_state(fake) == (None, None) and code_label(fake) == __version__
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # inside some other repository: none either
    git_state.cache_clear()
    assert git_state(fake) == (None, None)


def test_a_new_file_in_the_checkout_makes_it_dirty(tmp_path):
    root = tmp_path / "repo"
    (root / "src" / "tracegen").mkdir(parents=True)
    (root / "src" / "tracegen" / "a.py").write_text("x = 1\n")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    package = root / "src" / "tracegen"
    commit, dirty = git_state(package)
    assert re.fullmatch("[0-9a-f]{40}", commit) and dirty is False
    (package / "b.py").write_text("y = 2\n")
    git_state.cache_clear()
    assert git_state(package) == (commit, True) and code_label(package).endswith(".dirty")


def test_provenance_holds_the_versions_that_decide_the_numbers():
    p = provenance()
    assert p["tracegen"] == __version__ and p["code"] == code_label() and p["cpus"] >= 1
    assert p["packages"]["torch"] and p["packages"]["numpy"] and p["python"].count(".") == 2
