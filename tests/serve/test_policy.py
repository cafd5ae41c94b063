"""The served-mode file policy: a served session touches files only inside --dir, and no
typed path gets out of it (.., absolute paths, symlinks leading out, ~)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backprop_tui.serve.policy import SERVED_ENV, FilePolicy, PathRefused


def test_local_sessions_take_any_path(tmp_path):
    policy = FilePolicy.from_environ({})
    assert not policy.served and policy.files_allowed and policy.autosave
    assert policy.resolve("/etc/passwd") == Path("/etc/passwd")
    assert policy.resolve("a.toml", base=tmp_path) == tmp_path / "a.toml"


def test_served_without_a_directory_uses_no_files():
    policy = FilePolicy.from_environ({SERVED_ENV: "1"})
    assert policy.served and not policy.files_allowed and not policy.autosave
    for text in ("a.toml", "/tmp/a.toml", "../a.toml"):
        with pytest.raises(PathRefused, match="off in a served session"):
            policy.resolve(text)


def test_environment_round_trip(tmp_path):
    policy = FilePolicy(True, tmp_path)
    again = FilePolicy.from_environ(policy.environ())
    assert again == FilePolicy(True, tmp_path.resolve())
    assert FilePolicy().environ() == {}


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "class"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret.toml").write_text("secret")
    return FilePolicy(True, root), root, tmp_path


def test_names_inside_the_directory_are_allowed(served):
    policy, root, _ = served
    assert policy.resolve("mine.toml") == root.resolve() / "mine.toml"
    assert policy.resolve("sub/mine.toml") == root.resolve() / "sub" / "mine.toml"
    assert policy.resolve("./sub/./x.md") == root.resolve() / "sub" / "x.md"
    assert policy.shown(policy.resolve("sub/x.md")) == "sub/x.md"


@pytest.mark.parametrize("text", ["../secret.toml", "sub/../../secret.toml", "..", "sub/.."])
def test_dot_dot_is_refused(served, text):
    policy, _, _ = served
    with pytest.raises(PathRefused, match="'..' leaves"):
        policy.resolve(text)


@pytest.mark.parametrize("text", ["/etc/passwd", "~/x.toml", "~root/x.toml"])
def test_absolute_and_home_paths_are_refused(served, text):
    policy, _, _ = served
    with pytest.raises(PathRefused, match="absolute"):
        policy.resolve(text)


def test_the_absolute_path_of_the_directory_itself_is_refused(served):
    policy, root, _ = served
    with pytest.raises(PathRefused):
        policy.resolve(str(root / "mine.toml"))


def test_a_symlink_leading_out_is_refused(served):
    policy, root, outside = served
    os.symlink(outside / "secret.toml", root / "link.toml")
    os.symlink(outside, root / "out")
    with pytest.raises(PathRefused, match="leads out"):
        policy.resolve("link.toml")
    with pytest.raises(PathRefused, match="leads out"):
        policy.resolve("out/secret.toml")
    with pytest.raises(PathRefused, match="leads out"):
        policy.resolve("out/new.toml")  # a file that does not exist yet, behind the link


def test_a_symlink_inside_the_directory_is_fine(served):
    policy, root, _ = served
    os.symlink(root / "sub", root / "alias")
    assert policy.resolve("alias/x.toml") == root.resolve() / "sub" / "x.toml"


@pytest.mark.parametrize("text", ["", "  ", "a\0b", "a\nb"])
def test_empty_or_odd_names_are_refused(served, text):
    policy, _, _ = served
    with pytest.raises(PathRefused):
        policy.resolve(text)
