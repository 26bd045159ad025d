"""Settings, ``[musicbrainz]``: off by default, a contact required when it is on (MusicBrainz and ListenBrainz
refuse clients without one in the User-Agent), the lookahead within what ListenBrainz serves."""

from __future__ import annotations

import pytest

from bot.settings import ConfigError, MusicBrainzSettings, load_settings


def load(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_settings(path, {}, require_secrets=False)


def refused(tmp_path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert "\n" not in str(err.value)
    return err.value


def test_the_signal_is_off_by_default_and_points_at_the_real_services(tmp_path):
    section = load(tmp_path, "").musicbrainz
    assert section == MusicBrainzSettings()
    assert (section.enabled, section.contact, section.lookahead_days) == (False, "", 30)
    assert section.api_base_url == "https://musicbrainz.org/ws/2"
    assert section.listenbrainz_api_base_url == "https://api.listenbrainz.org"


@pytest.mark.parametrize("contact", ["ops@example.org", "https://example.org/release-bot", "http://bot.example"])
def test_an_email_or_a_url_is_a_contact(tmp_path, contact):
    section = load(tmp_path, f'[musicbrainz]\nenabled = true\ncontact = " {contact} "\n').musicbrainz
    assert section.enabled and section.contact == contact


def test_enabled_without_a_contact_is_refused_naming_the_key(tmp_path):
    err = refused(tmp_path, "[musicbrainz]\nenabled = true\n")
    assert err.key == "musicbrainz.contact"
    assert "required when musicbrainz.enabled is true" in err.problem and "User-Agent" in err.problem


@pytest.mark.parametrize("contact", ["someone", "ftp://example.org", "me (at) example.org", "https://"])
def test_a_contact_that_is_neither_is_refused(tmp_path, contact):
    err = refused(tmp_path, f'[musicbrainz]\ncontact = "{contact}"\n')
    assert err.key == "musicbrainz.contact" and "email address or an http(s) URL" in err.problem


@pytest.mark.parametrize("days", [0, 91, "30"])
def test_the_lookahead_is_1_to_90_days(tmp_path, days):
    value = f'"{days}"' if isinstance(days, str) else days
    err = refused(tmp_path, f"[musicbrainz]\nlookahead_days = {value}\n")
    assert str(err) == f"config error: musicbrainz.lookahead_days: must be a whole number from 1 to 90, got {days!r}"


def test_the_base_urls_can_point_at_the_emulators(tmp_path):
    section = load(
        tmp_path,
        '[musicbrainz]\napi_base_url = "http://127.0.0.1:8000/ws/2/"\nlistenbrainz_api_base_url = "http://127.0.0.1:8001"\n',
    ).musicbrainz
    assert (section.api_base_url, section.listenbrainz_api_base_url) == (
        "http://127.0.0.1:8000/ws/2",
        "http://127.0.0.1:8001",
    )
    assert refused(tmp_path, '[musicbrainz]\napi_base_url = "musicbrainz.org"\n').key == "musicbrainz.api_base_url"
