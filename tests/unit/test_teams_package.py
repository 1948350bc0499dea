"""The Teams app package: what Teams checks on upload, checked here before an admin tries."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from teams_package import APP_PACKAGE_DIR, ManifestError, build_package, png_size

APP_ID = "3f2b8c1e-6d4a-4b7e-9a21-5c0d8e7f6a13"


def _manifest(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as archive:
        return json.loads(archive.read("manifest.json"))


def _template_copy(tmp_path: Path) -> Path:
    """A private copy of appPackage/ that a test may edit without touching the real one."""
    copy = tmp_path / "appPackage"
    shutil.copytree(APP_PACKAGE_DIR, copy)
    return copy


def test_package_has_the_three_files_at_the_zip_root(tmp_path: Path) -> None:
    out = build_package(APP_ID, tmp_path / "app.zip")

    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]


def test_manifest_carries_the_app_id_version_and_scopes(tmp_path: Path) -> None:
    out = build_package(APP_ID, tmp_path / "app.zip", version="2.3.4",
                        valid_domains=["bot.example.org"])
    manifest = _manifest(out)

    assert manifest["id"] == APP_ID
    assert manifest["version"] == "2.3.4"
    assert manifest["validDomains"] == ["bot.example.org"]
    (bot,) = manifest["bots"]
    assert bot["botId"] == APP_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert bot["supportsFiles"] is False
    assert {scope for cl in bot["commandLists"] for scope in cl["scopes"]} == set(bot["scopes"])
    assert "{{" not in json.dumps(manifest)


def test_manifest_offers_the_staff_commands(tmp_path: Path) -> None:
    bot = _manifest(build_package(APP_ID, tmp_path / "app.zip"))["bots"][0]
    by_scope = {cl["scopes"][0]: {c["title"] for c in cl["commands"]} for cl in bot["commandLists"]}

    assert {"help", "my questions", "ask anonymously", "ask privately", "me too", "board here"} <= by_scope["personal"]
    for scope in ("team", "groupChat"):
        assert {"help", "me too", "open event", "close event", "board here", "events", "moderate here",
                "publish here", "grant moderator"} <= by_scope[scope]


def test_every_command_in_the_manifest_is_one_the_bot_knows_and_help_explains() -> None:
    from handlers.commands import GUIDE

    known = {guide.command for guide in GUIDE} | {"help"}
    manifest = json.loads((APP_PACKAGE_DIR / "manifest.json").read_text(encoding="utf-8"))
    for command_list in manifest["bots"][0]["commandLists"]:
        assert {c["title"] for c in command_list["commands"]} <= known


def test_the_developer_comes_from_the_caller(tmp_path: Path) -> None:
    developer = {"name": "Shire County Council", "websiteUrl": "https://www.shire.example/",
                 "privacyUrl": "https://www.shire.example/privacy", "termsOfUseUrl": "https://www.shire.example/terms"}
    assert _manifest(build_package(APP_ID, tmp_path / "app.zip", developer=developer))["developer"] == developer
    with pytest.raises(ManifestError, match="must start with https://"):
        build_package(APP_ID, tmp_path / "bad.zip", developer={**developer, "privacyUrl": "http://x.example"})


def test_icons_are_the_sizes_teams_needs(tmp_path: Path) -> None:
    out = build_package(APP_ID, tmp_path / "app.zip")
    manifest = _manifest(out)

    with zipfile.ZipFile(out) as archive:
        assert png_size(archive.read(manifest["icons"]["color"])) == (192, 192)
        assert png_size(archive.read(manifest["icons"]["outline"])) == (32, 32)


def test_out_directory_gets_a_versioned_file_name(tmp_path: Path) -> None:
    out = build_package(APP_ID, tmp_path, version="1.2.0")

    assert out == tmp_path / "colleague-questions-bot-1.2.0.zip"
    assert out.is_file()


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = build_package(APP_ID, tmp_path / "a.zip").read_bytes()
    second = build_package(APP_ID, tmp_path / "b.zip").read_bytes()

    assert first == second


@pytest.mark.parametrize("bad_id", ["", "   ", "not-a-guid", "{" + APP_ID + "}",
                                    APP_ID.replace("-", ""), APP_ID + "0"])
def test_app_id_that_is_not_a_guid_is_refused(tmp_path: Path, bad_id: str) -> None:
    with pytest.raises(ValueError, match="MicrosoftAppId"):
        build_package(bad_id, tmp_path / "app.zip")

    assert not any(tmp_path.iterdir())


def test_empty_app_id_says_it_is_empty(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        build_package("", tmp_path / "app.zip")


def test_bad_version_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="version '1.0'"):
        build_package(APP_ID, tmp_path / "app.zip", version="1.0")


def test_domain_with_a_scheme_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="without https://"):
        build_package(APP_ID, tmp_path / "app.zip", valid_domains=["https://bot.example.org"])


def test_too_long_command_title_is_reported(tmp_path: Path) -> None:
    template = _template_copy(tmp_path)
    manifest = json.loads((template / "manifest.json").read_text(encoding="utf-8"))
    manifest["bots"][0]["commandLists"][0]["commands"][0]["title"] = "x" * 33
    (template / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    with pytest.raises(ManifestError) as caught:
        build_package(APP_ID, tmp_path / "out" / "app.zip", template_dir=template)

    assert caught.value.problems == [
        ("bots[0].commandLists[0].commands[0].title 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' is 33 "
         "characters; Teams allows at most 32")
    ]
    assert not (tmp_path / "out").exists()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    template = _template_copy(tmp_path)
    manifest = json.loads((template / "manifest.json").read_text(encoding="utf-8"))
    manifest["name"]["short"] = "S" * 31
    manifest["description"]["short"] = "d" * 81
    manifest["bots"][0]["commandLists"][1]["commands"][1]["description"] = "d" * 129
    (template / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    shutil.copy(template / "color.png", template / "outline.png")

    with pytest.raises(ManifestError) as caught:
        build_package(APP_ID, tmp_path / "app.zip", template_dir=template)

    text = str(caught.value)
    assert "name.short" in text
    assert "description.short" in text
    assert "bots[0].commandLists[1].commands[1].description" in text
    assert "icons.outline 'outline.png' is 192x192; Teams needs 32x32" in text


def test_icon_that_is_not_a_png_is_reported(tmp_path: Path) -> None:
    template = _template_copy(tmp_path)
    (template / "color.png").write_bytes(b"GIF89a not really")

    with pytest.raises(ManifestError, match="icons.color 'color.png': not a PNG"):
        build_package(APP_ID, tmp_path / "app.zip", template_dir=template)
