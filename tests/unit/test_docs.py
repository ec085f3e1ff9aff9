"""The README documents every setting."""

from pathlib import Path

from service.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = [n for n in Settings.model_fields if f"`TITAN_{n.upper()}`" not in README]
    assert missing == [], f"document these settings in README.md: {missing}"
