"""``tests/conftest.py``: ``shared_path`` fails under CI and skips elsewhere when ``../shared`` is missing."""

from __future__ import annotations

import pytest

from tests import conftest


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """``../shared`` moved to an empty ``tmp_path/shared`` holding only ``spotify/fixtures``."""
    root = tmp_path / "shared"
    (root / "spotify" / "fixtures").mkdir(parents=True)
    monkeypatch.setattr(conftest, "SHARED", root)
    return root


@pytest.mark.parametrize("ci", [None, "true", "1", "false", ""])
def test_a_present_path_is_returned(shared, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert conftest.shared_path("spotify", "fixtures") == shared / "spotify" / "fixtures"


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_path_fails_under_ci(shared, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as info:
        conftest.shared_path("spotify", "openapi", "fixed-spotify-open-api.yml")
    message = str(info.value)
    assert str(shared / "spotify" / "openapi" / "fixed-spotify-open-api.yml") in message
    assert f"CI={ci}" in message


@pytest.mark.parametrize("ci", [None, "false", "0", ""])
def test_a_missing_path_skips_outside_ci(shared, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception) as info:
        conftest.shared_path("musicdata")
    assert str(shared / "musicdata") in str(info.value) and "missing" in str(info.value)
