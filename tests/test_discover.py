import os

import pytest

from emotion_batch.discover import WalkStats, walk_ads
from emotion_batch.exceptions import ConfigError


def test_walk_finds_images_skips_and_counts_the_rest(campaign_tree):
    stats = WalkStats()
    found = {c.path for _, _, cands in walk_ads(campaign_tree["root"], stats) for c in cands}
    assert found == set(campaign_tree["expected"])
    assert stats.hidden == campaign_tree["hidden"]
    assert stats.not_image == campaign_tree["not_image"]
    assert stats.outside_ad == 1


def test_unreadable_folder_is_recorded_not_fatal(campaign_tree, monkeypatch):
    real = os.scandir
    blocked = str(campaign_tree["root"] / "summer" / "ad two")

    def scandir(path):
        if str(path) == blocked:
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr("emotion_batch.discover.os.scandir", scandir)
    stats = WalkStats()
    found = {c.path for _, _, cands in walk_ads(campaign_tree["root"], stats) for c in cands}
    assert stats.unreadable_dirs == [("summer/ad two", "Permission denied")]
    assert "summer/ad_one/single_0.jpg" in found
    assert not any(p.startswith("summer/ad two/") for p in found)


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="ROOT must be a folder"):
        list(walk_ads(tmp_path / "nope"))


def _png(path, shade=90):
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((32, 32, 3), shade, dtype=np.uint8)).save(path)
    return path


def _remove_deep(top) -> None:
    """Remove a folder tree of any depth (shutil.rmtree recurses, and pytest's clean-up of old temporary
    folders would die on this one in a later session)."""
    stack = [(str(top), False)]
    while stack:
        path, emptied = stack.pop()
        if emptied:
            os.rmdir(path)
            continue
        stack.append((path, True))
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, False))
                else:
                    os.unlink(entry.path)


@pytest.fixture()
def nested(tmp_path):
    """Makes ``top/d/d/.../d``, ``depth`` folders deep (pathlib's and os.makedirs's own recursion would fail
    here), and removes it after the test."""
    made = []

    def make(top, depth: int):
        path = str(top)
        for _ in range(depth):
            path = os.path.join(path, "d")
            os.mkdir(path)
        made.append(os.path.join(str(top), "d"))
        return type(top)(path)

    yield make
    for path in made:
        _remove_deep(path)


def test_very_deep_folders_are_walked_without_recursion(tmp_path, nested):
    """1,100 nested folders below an ad: the recursive walk raised RecursionError and the run processed nothing."""
    ad = tmp_path / "root" / "c" / "a"
    _png(ad / "top.png")
    deep = nested(ad, 1100)
    _png(deep / "bottom.png")
    _png(tmp_path / "root" / "c" / "b" / "other.png")
    found = sorted(c.path for _, _, cands in walk_ads(tmp_path / "root") for c in cands)
    assert found == ["c/a/" + "d/" * 1100 + "bottom.png", "c/a/top.png", "c/b/other.png"]


def test_special_files_are_counted_and_links_out_of_root_not_followed(tmp_path):
    root = tmp_path / "root"
    ad = root / "c" / "a"
    _png(ad / "real.png")
    os.mkfifo(ad / "pipe.jpg")  # reading it would block the run forever
    os.symlink(ad / "gone.png", ad / "dangling.png")
    os.symlink(ad / "real.png", ad / "alias.png")  # inside ROOT: followed
    os.symlink(_png(tmp_path / "elsewhere" / "secret.png"), ad / "outside.png")
    os.symlink(tmp_path / "elsewhere", ad / "folder_link")  # folders behind links: never (no loops)
    stats = WalkStats()
    found = {c.path for _, _, cands in walk_ads(root, stats) for c in cands}
    assert found == {"c/a/real.png", "c/a/alias.png"}
    assert (stats.special, stats.links_outside) == (3, 1)  # the FIFO, the dangling link, the folder link
    stats = WalkStats()
    found = {c.path for _, _, cands in walk_ads(root, stats, follow_symlinks=True) for c in cands}
    assert found == {"c/a/real.png", "c/a/alias.png", "c/a/outside.png"}
    assert (stats.special, stats.links_outside) == (3, 0)


def test_run_summary_counts_what_was_skipped(tmp_path, tiny_model_file, nested):
    import json

    from click.testing import CliRunner

    from emotion_batch.cli import cli

    root = tmp_path / "root"
    ad = root / "c" / "a"
    _png(ad / "real.png")
    os.mkfifo(ad / "pipe.jpg")
    os.symlink(ad / "gone.png", ad / "dangling.png")
    os.symlink(_png(tmp_path / "elsewhere" / "secret.png"), ad / "outside.png")
    deep = nested(ad, 1100)
    _png(deep / "bottom.png")
    base = ["run", str(root), "--model", str(tiny_model_file), "--detector", "none", "--workers", "0", "--no-reports"]
    result = CliRunner().invoke(cli, base + ["--db", f"sqlite:///{tmp_path / 'a.sqlite'}", "--json", "-v"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{"):])
    assert (out["processed"], out["ok"], out["special_skipped"], out["links_skipped"]) == (2, 2, 2, 1)
    result = CliRunner().invoke(cli, base + ["--db", f"sqlite:///{tmp_path / 'b.sqlite'}", "--follow-symlinks"])
    assert result.exit_code == 0, result.output
    assert "3 processed" in result.output and "skipped 2 special files or dangling links; " in result.output
