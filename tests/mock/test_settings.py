"""Settings come from the environment, fail fast by name, and shape URLs as documented."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

import craftkit_spec
from mock_server import Settings, create_app
from mock_server.seed import SeedError, default_seed_path, load_seed
from mock_server.settings import DEFAULT_RESEND_BASE_URL, SettingsError
from mock_server.testing import serve
from tests.conftest import ACME_KEY, SUCCEEDED_RENDER

AUTH = {"Authorization": f"Bearer {ACME_KEY}"}


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.email_transport == "outbox"
    assert settings.resend_base_url == DEFAULT_RESEND_BASE_URL
    assert settings.max_body_bytes == craftkit_spec.body_limit()
    assert settings.share_base_url is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SHARE_BASE_URL", "ftp://example.com"),
        ("APP_URL", "example.com"),
        ("S3_PUBLIC_URL", "https://"),
        ("RESEND_BASE_URL", "not a url"),
        ("CRAFTKIT_MOCK_EMAIL_TRANSPORT", "pigeon"),
        ("CRAFTKIT_MOCK_QUEUE_SECONDS", "-1"),
        ("CRAFTKIT_MOCK_RENDER_SECONDS", "soon"),
        ("CRAFTKIT_MOCK_MAX_BODY_BYTES", "0"),
        ("CRAFTKIT_MOCK_TRUST_FORWARDED_FOR", "maybe"),
        ("CRAFTKIT_MOCK_TOKEN_SECRET", "zz"),
        ("CRAFTKIT_MOCK_TOKEN_SECRET", "00" * 8),
        ("CRAFTKIT_MOCK_TOKEN_SECRET", "00" * 65),
        ("EMAIL_FROM", "nobody"),
    ],
)
def test_bad_setting_fails_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def _share_url(settings: Settings, seed_path: Path | None = None) -> str:
    seed = load_seed(seed_path) if seed_path else None
    with serve(create_app(settings, seed)) as base_url:
        response = httpx.post(
            f"{base_url}/v1/renders/{SUCCEEDED_RENDER}/shares", headers=AUTH, json={}
        )
        assert response.status_code == 201
        url: str = response.json()["shareUrl"]
        token = response.json()["shareToken"]
        listed = httpx.get(f"{base_url}/v1/renders/{SUCCEEDED_RENDER}/shares", headers=AUTH)
        assert listed.json()["shares"][0]["shareUrl"] == url
        assert url.endswith(f"/share/{token}")
        return url.removesuffix(f"/share/{token}")


def test_share_base_resolution_order(tmp_path: Path) -> None:
    both = Settings.from_env(
        {"SHARE_BASE_URL": "https://s.example", "APP_URL": "https://a.example"}
    )
    assert _share_url(both) == "https://s.example"
    assert _share_url(Settings.from_env({"APP_URL": "https://a.example/"})) == "https://a.example"
    assert _share_url(Settings()).startswith("http://127.0.0.1:")
    seed = yaml.safe_load(default_seed_path().read_text())
    seed["projects"][0]["shareDomain"] = "https://docs.acme.example"
    custom = tmp_path / "seed.yaml"
    custom.write_text(yaml.safe_dump(seed))
    assert _share_url(both, custom) == "https://docs.acme.example"


def test_download_url_follows_s3_public_url() -> None:
    settings = Settings.from_env({"S3_PUBLIC_URL": "https://cdn.example/bucket"})
    with serve(create_app(settings)) as base_url:
        render = httpx.get(f"{base_url}/v1/renders/{SUCCEEDED_RENDER}", headers=AUTH).json()
    assert render["downloadUrl"].startswith("https://cdn.example/bucket/")
    assert render["downloadUrl"].endswith(f"/{SUCCEEDED_RENDER}.pdf")


def test_a_token_secret_makes_tokens_stable_across_restarts() -> None:
    secret = {"CRAFTKIT_MOCK_TOKEN_SECRET": "00" * 32}
    with serve(create_app(Settings.from_env(secret))) as base_url:
        created = httpx.post(
            f"{base_url}/v1/renders/{SUCCEEDED_RENDER}/shares", headers=AUTH, json={}
        ).json()
        listed = httpx.get(f"{base_url}/v1/renders/{SUCCEEDED_RENDER}/shares", headers=AUTH).json()
    assert listed["shares"][0]["shareToken"] == created["shareToken"]


def test_forwarded_for_can_be_distrusted() -> None:
    settings = Settings.from_env({"CRAFTKIT_MOCK_TRUST_FORWARDED_FOR": "false"})
    with serve(create_app(settings)) as base_url:
        token = httpx.post(
            f"{base_url}/v1/renders/{SUCCEEDED_RENDER}/shares", headers=AUTH, json={}
        ).json()["shareToken"]
        for address in ("192.0.2.1", "192.0.2.2"):
            httpx.get(f"{base_url}/share/{token}", headers={"X-Forwarded-For": address})
        rows = httpx.get(f"{base_url}/v1/renders/{SUCCEEDED_RENDER}/shares", headers=AUTH).json()
    assert rows["shares"][0]["clickCount"] == 1


def test_seed_file_mistakes_are_reported_with_their_place(tmp_path: Path) -> None:
    seed = yaml.safe_load(default_seed_path().read_text())
    seed["projects"][0]["renders"][0]["template"] = "missing"
    bad = tmp_path / "seed.yaml"
    bad.write_text(yaml.safe_dump(seed))
    with pytest.raises(SeedError, match="missing"):
        load_seed(bad)
    seed["projects"][0]["apiKey"] = "sk_wrong"
    bad.write_text(yaml.safe_dump(seed))
    with pytest.raises(SeedError, match="apiKey"):
        load_seed(bad)
