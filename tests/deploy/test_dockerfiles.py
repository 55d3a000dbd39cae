"""Dockerfiles per dependency set: one base, one per distinct requirements file, non-root."""

from __future__ import annotations

from jobyard.config import load_settings
from jobyard.deploy import dockerfiles


def test_one_image_per_dependency_set_running_as_non_root() -> None:
    settings = load_settings(
        None,
        environ={},
        yard="tests.yards.basic:yard",
        pools={
            "general": {},
            "media": {"requirements": "pools/media/requirements.txt", "image": "r/media:1"},
            "thumbs": {"requirements": "pools/media/requirements.txt", "image": "r/media:1"},
            "vision": {"requirements": "pools/vision/requirements.txt", "image": "r/vision:1"},
        },
    )
    files = {f.filename: f for f in dockerfiles.render(settings)}
    assert set(files) == {"Dockerfile", "Dockerfile.media", "Dockerfile.vision"}
    assert files["Dockerfile"].pools == ("general",)
    assert files["Dockerfile.media"].pools == ("media", "thumbs")  # shared requirements
    for dockerfile in files.values():
        lines = dockerfile.text.splitlines()
        users = [line for line in lines if line.startswith("USER ")]
        assert users == ["USER 10001:10001"]
        assert lines.index(users[0]) > max(
            i for i, text in enumerate(lines) if text.startswith("RUN ")
        )
        assert 'ENTRYPOINT ["jobyard"]' in lines
    media = files["Dockerfile.media"].text
    assert "COPY pools/media/requirements.txt /tmp/requirements.txt" in media
    assert 'CMD ["worker", "--pool", "media"]' in media
