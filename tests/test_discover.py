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
